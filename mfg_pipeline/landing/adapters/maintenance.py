"""Maintenance text (excavator work orders + MaintNet aviation logbook) -> landing plant ``maintenance``.

Excavators (``excavators-cleaned.csv``, 5,485 work orders, assets A-E):
- machine_id ``excavator-<Asset>``, text = ``OriginalShorttext``, label = ``MajorSystem``
  canonicalised (``canonical_system``): each ``_``-separated system snake_cased, systems sorted
  and joined with ``+`` (``Engine_Hydraulic System`` and ``Hydraulic System_Engine`` ->
  ``engine+hydraulic_system``); ``NA`` -> unlabeled (empty label). The vocabulary of every
  canonical label in the source is ``SYSTEM_LABELS`` (the plant's text classes); the rare-class
  fold to ``other`` happens in the labeled dataset, not here, so the landing zone stays faithful.
- timestamp: the work order's real date ``BscStartDate`` is kept in order and spacing but on a
  compressed synthetic clock: **one real day = one synthetic minute** after ``START_DAY``
  (2001-01-01 -> 00:00, 2012-12-13 -> day 3, 00:46). Real dates span 11.5 years = ~4,200 daily
  partitions, i.e. ~4,200 Dagster runs for 5,485 short texts; compressed they fill 4 days. The
  real date is recoverable: date = 2001-01-01 + minutes since 00:00 of ``START_DAY``.
- Write-through (cleaning quarantines it): unparseable date (the raw value is written as the
  timestamp), missing asset, empty text (``NA``), a label outside the vocabulary (one source row
  has MajorSystem ``180``).

MaintNet (6,169 records, no labels): machine_id ``maintnet``, text = ``PROBLEM ; ACTION``,
synthetic timestamps one minute apart in file order from ``START_DAY`` (4.3 days).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

from mfg_pipeline.landing.adapters.common import (
    START_DAY,
    AdapterReport,
    csv_bytes,
    finish,
    minute_stamp,
    one_line,
    write_if_changed,
)

SOURCE = "maintenance_text"
PLANT = "maintenance"
PLANTS = (PLANT,)
EXCAVATORS = "excavators-cleaned.csv"
MAINTNET = "maintnet_aviation_Aircraft_Annotation_DataFile.csv"
EPOCH = dt.date(2001, 1, 1)
TEXT_COLUMNS = ("timestamp", "machine_id", "text", "label")
MISSING = ("", "NA", "N/A", "NAN")
# Every canonical MajorSystem label in excavators-cleaned.csv (36), the plant's text classes.
SYSTEM_LABELS = (
    "bucket", "bucket+hydraulic_cylinders", "bucket+hydraulic_cylinders+hydraulic_system",
    "bucket+hydraulic_system", "driveshaft", "driveshaft+engine", "engine", "engine+hydraulic_cylinders",
    "engine+hydraulic_system", "engine+hydraulic_system+not_trans+transmission", "engine+induction_and_exhaust",
    "engine+radiator", "engine+hydraulic_system+radiator", "engine+transmission", "engine+turbochargers",
    "engine+hydraulic_system+turbochargers", "final_drive", "final_drive+hydraulic_system",
    "final_drive+not_trans+transmission", "hydraulic_cylinder", "hydraulic_cylinders",
    "hydraulic_cylinders+hydraulic_system", "hydraulic_system", "hydraulic_system+induction_and_exhaust",
    "hydraulic_system+radiator", "hydraulic_system+transmission", "hydraulic_system+turbochargers",
    "induction_and_exhaust", "induction_and_exhaust+turbochargers", "radiator", "slew", "superstructure",
    "transmission", "turbochargers",
)


def snake(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")


def canonical_system(value: str) -> str:
    """``MajorSystem`` -> canonical label ("" when missing)."""
    if value.strip().upper() in MISSING:
        return ""
    return "+".join(sorted(snake(part) for part in value.split("_") if snake(part)))


def _well_formed(reader, header: list[str], path: Path, report: AdapterReport, limit: int | None):
    """(row number, row) of the CSV rows with the header's field count; the others are
    quarantined by the adapter with their raw text."""
    for number, row in enumerate(reader, start=1):
        if limit is not None and number > limit:
            break
        if len(row) != len(header):
            report.quarantine(path.name, number, f"expected {len(header)} fields, got {len(row)}", ",".join(row))
            continue
        yield number, row


def _excavators(path: Path, report: AdapterReport, limit: int | None) -> dict[str, list]:
    by_day: dict[str, list] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        needed = ("BscStartDate", "Asset", "OriginalShorttext", "MajorSystem")
        if any(n not in header for n in needed):
            report.quarantine(path.name, 0, f"header lacks one of {needed}: {header!r}")
            return by_day
        last_day = START_DAY
        for _, row in _well_formed(reader, header, path, report, limit):
            record = dict(zip(header, row))
            raw_date = record["BscStartDate"].strip()
            try:
                stamp = minute_stamp((dt.date.fromisoformat(raw_date) - EPOCH).days)
                last_day = stamp[:10]
            except ValueError:
                stamp = raw_date  # written through: cleaning quarantines "unparseable timestamp"
            asset = record["Asset"].strip()
            machine = f"excavator-{asset}" if asset.upper() not in MISSING else ""
            text = record["OriginalShorttext"]
            text = "" if text.strip().upper() in MISSING else one_line(text)
            by_day.setdefault(last_day, []).append((stamp, machine, text, canonical_system(record["MajorSystem"])))
            report.records += 1
    return by_day


def _maintnet(path: Path, report: AdapterReport, limit: int | None) -> dict[str, list]:
    by_day: dict[str, list] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        if header[:3] != ["IDENT", "PROBLEM", "ACTION"]:
            report.quarantine(path.name, 0, f"unexpected header {header!r}")
            return by_day
        position = 0
        for _, row in _well_formed(reader, header, path, report, limit):
            parts = [one_line(p).strip() for p in row[1:3] if p.strip()]
            stamp = minute_stamp(position)
            position += 1
            by_day.setdefault(stamp[:10], []).append((stamp, "maintnet", " ; ".join(parts), ""))
            report.records += 1
    return by_day


def adapt(source_dir: Path, landing_root: Path, limit: int | None = None) -> list[AdapterReport]:
    """``limit`` keeps the first N rows of each file (tests)."""
    source_dir, landing_root = Path(source_dir), Path(landing_root)
    root = landing_root / PLANT
    report = AdapterReport(SOURCE, PLANT)
    for name, read, stem in ((EXCAVATORS, _excavators, "excavators"), (MAINTNET, _maintnet, "maintnet")):
        path = source_dir / name
        if not path.exists():
            report.quarantine(name, None, "source file missing")
            continue
        for when, rows in sorted(read(path, report, limit).items()):
            write_if_changed(root / "text" / when / f"{stem}-{when}.csv", csv_bytes(TEXT_COLUMNS, rows), report, landing_root)
    return [finish(report, root, landing_root)]
