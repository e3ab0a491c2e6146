"""A tiny landing zone built file by file in a temporary folder, run through the real
ingestion and cleaning functions (no Dagster): the fast way to test bad input.

    drop = Drop(tmp_path)
    drop.write("sensor", "2026-01-01/bad.csv", "...")
    raw, clean, kept, quarantine = drop.run("sensor")
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from mfg_pipeline.cleaning import partition as cleaning
from mfg_pipeline.cleaning.image import ImageCleaningRules
from mfg_pipeline.cleaning.sensor import ChannelSpec, SensorCleaningRules
from mfg_pipeline.cleaning.text import TextCleaningRules
from mfg_pipeline.landing import contract, ingest
from mfg_pipeline.landing.contract import LandingLayout
from mfg_pipeline.landing.partitioning import LandingIndex

DAY = "2026-01-01"
NEXT_DAY = "2026-01-02"
SENSOR_RULES = SensorCleaningRules((ChannelSpec("temp", -20.0, 200.0), ChannelSpec("speed", 0.0, 20000.0)), stuck_run=5)
IMAGE_RULES = ImageCleaningRules(("none", "scratch"), size=16)
TEXT_RULES = TextCleaningRules(("electrical", "hydraulic"), max_chars=200)
SENSOR_HEADER = "timestamp,machine_id,temp,speed"
TEXT_HEADER = "timestamp,machine_id,text,label"


def sensor_rows(machine: str = "M01", n: int = 10, day: str = DAY, start_minute: int = 0) -> list[str]:
    """``n`` plausible, non-repeating readings one minute apart."""
    return [f"{day}T{(start_minute + i) // 60:02d}:{(start_minute + i) % 60:02d}:00Z,{machine},"
            f"{20 + 0.5 * i:.2f},{1000 + 7 * i}" for i in range(n)]


def csv_text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def png_bytes(size: tuple[int, int] = (16, 16), mode: str = "L", fmt: str = "PNG", color=128) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that *declares* width x height (a decompression bomb) with a token pixel stream."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
            + chunk(b"IEND", b""))


@dataclass
class Outcome:
    raw: ingest.IngestResult
    clean: cleaning.CleanResult
    kept: pd.DataFrame
    quarantine: pd.DataFrame
    rejected: pd.DataFrame  # what ingestion alone refused

    def reasons(self, source_file: str | None = None) -> list[str]:
        q = self.quarantine
        if source_file is not None:
            q = q[q["source_file"] == source_file]
        return sorted(q["reason"].astype(str))

    def assert_accounting(self) -> None:
        """Every record that landed is kept or quarantined: none vanish, none are invented."""
        assert self.raw.records_in == self.clean.records_in
        assert self.clean.records_in == self.clean.kept + self.clean.quarantined
        assert self.clean.kept == len(self.kept) and self.clean.quarantined == len(self.quarantine)


class Drop:
    def __init__(self, tmp_path: Path):
        self.root = Path(tmp_path) / "landing"
        self.work = Path(tmp_path) / "work"
        self.layout = LandingLayout(self.root)

    def path(self, source: str, relative: str) -> Path:
        return self.layout.directory(source) / relative

    def write(self, source: str, relative: str, data: str | bytes) -> Path:
        path = self.path(source, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        return path

    def index(self, source: str) -> LandingIndex:
        return LandingIndex(self.layout, source, self.work / "index" / f"{source}.json")

    def ingest(self, source: str, day: str = DAY) -> ingest.IngestResult:
        out = self.work / "raw" / source / day
        if source == "image":
            return ingest.ingest_images_day(self.index(source), day, out)
        return ingest.ingest_tabular_day(self.index(source), day, out)

    def run(self, source: str, day: str = DAY, known_machines: set[str] | None = None) -> Outcome:
        """Ingest then clean one day of one source (a modality or a label table)."""
        raw = self.ingest(source, day)
        raw_dir, out = self.work / "raw" / source / day, self.work / "clean" / source / day
        if source == "sensor":
            result = cleaning.clean_sensor_partition(raw_dir, out, SENSOR_RULES)
        elif source == "text":
            result = cleaning.clean_text_partition(raw_dir, out, TEXT_RULES)
        elif source == "image":
            result = cleaning.clean_image_partition(raw_dir, out, IMAGE_RULES)
        elif source in contract.LABEL_TABLES:
            result = cleaning.clean_label_partition(source, raw_dir, out, known_machines)
        else:
            raise ValueError(source)
        rejected = pd.read_parquet(raw.path / ingest.REJECTED)
        return Outcome(raw, result, cleaning.read_kept(out), cleaning.read_quarantine(out), rejected)
