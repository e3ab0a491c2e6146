"""What every adapter shares: the synthetic calendar, idempotent writes, the adapter quarantine.

An adapter turns one public dataset into landing-zone files (``landing.contract``) under
``<landing_root>/<plant>/``. It is deterministic (same source -> byte-identical files) and
idempotent: a file whose content is unchanged is not rewritten, so its mtime, the landing
index fingerprint and every downstream data version stay the same.

Unreadable records are never dropped silently. Policy:

1. Write it through when the contract can carry it (a row whose machine and time are known but
   a value is junk, an empty text, an unknown label, a corrupt image file): ingestion and
   cleaning then quarantine it with their own reason, visible in Dagster.
2. Otherwise (no machine or time can be derived: a truncated line, a file that cannot be
   decoded at all) record it in ``<landing_root>/<plant>/adapter_quarantine.csv``
   (source_file, source_row, reason, record). That file sits beside the source folders, so
   ingestion never reads it; the adapter report and the CLI print its count.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mfg_pipeline.storage import atomic

# Day 0 of the public profile's synthetic calendar (its Dagster partitions start here).
START_DAY = "2020-01-01"
ADAPTER_QUARANTINE = "adapter_quarantine.csv"
QUARANTINE_COLUMNS = ("source_file", "source_row", "reason", "record")


def day(offset: int) -> str:
    """The ISO date ``offset`` days after ``START_DAY``."""
    return (dt.date.fromisoformat(START_DAY) + dt.timedelta(days=offset)).isoformat()


def minute_stamp(minutes: int, start: str = START_DAY) -> str:
    """ISO timestamp (naive = UTC) ``minutes`` after 00:00 of ``start``."""
    moment = dt.datetime.fromisoformat(start) + dt.timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class AdapterReport:
    """What one adapter run did for one plant."""

    dataset: str
    plant: str
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    records: int = 0
    quarantined: list[tuple[str, int | None, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def quarantine(self, source_file: str, source_row: int | None, reason: str, record: str = "") -> None:
        self.quarantined.append((source_file, source_row, reason, record[:2000]))

    def summary(self) -> dict:
        return {"dataset": self.dataset, "plant": self.plant, "files_written": len(self.written),
                "files_unchanged": len(self.unchanged), "records": self.records,
                "adapter_quarantined": len(self.quarantined), "notes": self.notes}


def write_if_changed(path: Path, data: bytes, report: AdapterReport, root: Path) -> None:
    """Write ``data`` atomically unless ``path`` already holds exactly these bytes."""
    relative = path.relative_to(root).as_posix()
    if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
        report.unchanged.append(relative)
        return
    atomic.write_bytes(path, data)
    report.written.append(relative)


def csv_bytes(columns: tuple[str, ...] | list[str], rows: list[tuple | list]) -> bytes:
    """A deterministic UTF-8 CSV with a header (LF line ends, minimal quoting)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic Parquet bytes of ``table`` (same table -> same bytes)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def finish(report: AdapterReport, plant_root: Path, landing_root: Path) -> AdapterReport:
    """Write the plant's adapter quarantine (always, possibly header only: deterministic)."""
    rows = sorted(report.quarantined, key=lambda r: (r[0], -1 if r[1] is None else r[1], r[2]))
    write_if_changed(plant_root / ADAPTER_QUARANTINE, csv_bytes(QUARANTINE_COLUMNS, rows), report, landing_root)
    return report


def one_line(text: str) -> str:
    """Line breaks inside a value -> spaces (text cleaning collapses whitespace anyway, and the
    landing CSV reader does not accept line breaks inside values)."""
    return " ".join(text.replace("\r", "\n").split("\n")).strip() if "\n" in text or "\r" in text else text
