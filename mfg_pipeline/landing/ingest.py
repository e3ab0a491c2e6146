"""Raw ingestion of one daily partition: landing files -> one text-typed Parquet table.

Rows are streamed file by file and batch by batch into a Parquet writer, so memory is bounded
by one batch, not by the number of files. Nothing is typed or judged here beyond what cannot
be read at all (those become rejected records with a reason); cleaning does the rest.
Re-ingesting a partition whose files did not change is a no-op that keeps its data version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mfg_pipeline.landing import contract
from mfg_pipeline.landing.partitioning import LandingIndex, day_of, fingerprint, parse_timestamps
from mfg_pipeline.landing.readers import (
    SOURCE_FILE,
    SOURCE_ROW,
    Rejected,
    file_problem,
    read_table,
    rejected_frame,
)
from mfg_pipeline.storage import atomic, versioned

# Bump when ingestion logic changes, so unchanged files are still re-ingested once.
INGEST_VERSION = "1"
ROWS = "rows.parquet"
REJECTED = "rejected.parquet"


@dataclass(frozen=True)
class IngestResult:
    day: str
    version: str
    files: int
    rows: int
    rejected: int
    columns: tuple[str, ...]
    reused: bool
    path: Path

    @property
    def records_in(self) -> int:
        return self.rows + self.rejected


def _columns(files: list[contract.LandingFile]) -> list[str]:
    names: list[str] = []
    for file in files:
        try:
            if file.path.suffix.lower() == ".parquet":
                found = pq.read_schema(file.path).names
            else:
                with open(file.path, "rb") as fh:
                    found = fh.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n").split(",")
        except (OSError, pa.ArrowInvalid):
            continue
        names.extend(n.strip() for n in found if n.strip() and n.strip() not in names)
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def _reuse(out_dir: Path, version: str) -> dict | None:
    info = versioned.pointer(out_dir)
    return info if info and info.get("version") == version else None


def ingest_tabular_day(index: LandingIndex, day: str, out_dir: Path) -> IngestResult:
    """All rows of ``day`` from every tabular landing file of one source, as text."""
    source = index.source
    entries = index.files_for_day(day)
    files = [f for f, _ in entries]
    version = fingerprint(files, salt=f"{source}:{day}:{INGEST_VERSION}")
    if info := _reuse(out_dir, version):
        return IngestResult(day, version, len(files), info["rows"], info["rejected"],
                            tuple(info["columns"]), True, versioned.current(out_dir))
    columns = _columns([f for f in files if file_problem(f, contract.SUFFIXES[source]) is None])
    schema = pa.schema([(c, pa.string()) for c in columns] + [(SOURCE_FILE, pa.string()), (SOURCE_ROW, pa.int64())])
    def write(folder: Path) -> dict:
        rows = 0
        rejected: list[Rejected] = []
        with pq.ParquetWriter(folder / ROWS, schema) as writer:
            for file, home in entries:
                for frame, bad in read_table(file, contract.SUFFIXES[source]):
                    if home == day:
                        rejected.extend(bad)
                    if frame.empty:
                        continue
                    if "timestamp" in frame.columns:
                        row_day = day_of(parse_timestamps(frame["timestamp"]))
                        keep = (row_day == day).fillna(False) | (row_day.isna() & (home == day))
                    else:
                        keep = pd.Series(home == day, index=frame.index)
                    frame = frame[keep.to_numpy()]
                    if frame.empty:
                        continue
                    frame = frame.reindex(columns=schema.names)
                    writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
                    rows += len(frame)
        atomic.write_parquet(folder / REJECTED, rejected_frame(rejected))
        return {"columns": columns, "files": len(files), "rows": rows, "rejected": len(rejected)}

    path = versioned.publish(out_dir, write, version)
    info = versioned.pointer(out_dir)
    return IngestResult(day, version, len(files), info["rows"], info["rejected"], tuple(columns), False, path)


IMAGE_SCHEMA = pa.schema([
    ("file", pa.string()), ("bytes", pa.binary()), ("sha256", pa.string()), ("label", pa.string()),
    ("machine_id", pa.string()), ("timestamp", pa.string()), (SOURCE_FILE, pa.string()),
])


def _image_labels(layout: contract.LandingLayout) -> tuple[dict[str, dict], list[Rejected]]:
    """relative image path -> its labels.csv row; rows that cannot be read are rejected."""
    labels: dict[str, dict] = {}
    rejected: list[Rejected] = []
    base = layout.directory("image")
    for path in contract.image_label_files(layout):
        relative = path.relative_to(base).as_posix()
        folder = path.parent.relative_to(base).as_posix()
        stat = path.stat()
        file = contract.LandingFile(path, relative, contract.day_from_path(relative), stat.st_size, stat.st_mtime_ns)
        for frame, bad in read_table(file, (".csv",)):
            rejected.extend(bad)
            if frame.empty:
                continue
            missing = [c for c in contract.IMAGE_LABEL_COLUMNS if c not in frame.columns]
            for row in frame.to_dict("records"):
                if missing:
                    rejected.append(Rejected(relative, int(row[SOURCE_ROW]), f"labels.csv lacks column(s) {missing}"))
                    continue
                key = f"{folder}/{row['file']}" if folder != "." else str(row["file"])
                labels[key] = {**row, "_labels_file": relative}
    return labels, rejected


def ingest_images_day(index: LandingIndex, day: str, out_dir: Path) -> IngestResult:
    """The bytes of every image of ``day`` with its labels.csv row (label, machine, time)."""
    entries = index.files_for_day(day)
    files = [f for f, _ in entries]
    layout = index.layout
    label_stats = [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in contract.image_label_files(layout)]
    version = fingerprint(files, salt=f"image:{day}:{INGEST_VERSION}:" + hashlib.sha256("|".join(label_stats).encode()).hexdigest())
    if info := _reuse(out_dir, version):
        return IngestResult(day, version, len(files), info["rows"], info["rejected"], (), True, versioned.current(out_dir))
    labels, label_rejected = _image_labels(layout)

    def write(folder: Path) -> dict:
        rows = 0
        rejected = [r for r in label_rejected if contract.day_from_path(r.source_file) in (day, None)]
        present = {f.relative for f in files}
        for key, row in labels.items():
            if contract.day_from_path(key) == day and key not in present:
                rejected.append(Rejected(row["_labels_file"], int(row[SOURCE_ROW]),
                                         f"label row references missing image {row['file']!r}"))
        with pq.ParquetWriter(folder / ROWS, IMAGE_SCHEMA) as writer:
            batch: list[dict] = []
            for file in files:
                problem = file_problem(file, contract.SUFFIXES["image"])
                if problem:
                    rejected.append(Rejected(file.relative, None, problem))
                    continue
                data = file.path.read_bytes()
                row = labels.get(file.relative, {})
                batch.append({"file": file.relative, "bytes": data, "sha256": hashlib.sha256(data).hexdigest(),
                              "label": row.get("label") or None, "machine_id": row.get("machine_id") or None,
                              "timestamp": row.get("timestamp") or None, SOURCE_FILE: file.relative})
                if len(batch) >= 256:
                    writer.write_table(pa.Table.from_pylist(batch, schema=IMAGE_SCHEMA))
                    rows += len(batch)
                    batch = []
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=IMAGE_SCHEMA))
                rows += len(batch)
        atomic.write_parquet(folder / REJECTED, rejected_frame(rejected))
        return {"files": len(files), "rows": rows, "rejected": len(rejected)}

    path = versioned.publish(out_dir, write, version)
    info = versioned.pointer(out_dir)
    return IngestResult(day, version, len(files), info["rows"], info["rejected"], (), False, path)
