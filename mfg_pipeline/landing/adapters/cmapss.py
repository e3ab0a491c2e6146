"""NASA C-MAPSS turbofan run-to-failure data -> one landing plant per sub-dataset.

- Plant ``cmapss_fd00N`` (N = 1..4); each engine unit is a machine: ``FD001-train-001``,
  ``FD001-test-001``.
- One cycle = one minute of synthetic time; cycle c of every engine of a split is at
  00:00 + (c - 1) min of that split's day: train on day 0 (``START_DAY``), test on day 1.
  The longest trajectory (543 cycles, + at most ~200 cycles of true RUL) ends before midnight,
  so each plant has two partitions.
- Channels ``op1..op3`` (operational settings) and ``s1..s21`` (sensors), written as the
  original text tokens into string Parquet columns (ingestion reads text anyway; a junk token
  is written through and cleaning quarantines it as a non-numeric value).
- ``labels/failures``: a train engine fails at its last cycle; a test engine fails at
  last_cycle + true RUL (``RUL_FD00N``). So RUL(t) = failure time - t for every engine.
- A line that does not hold 26 fields or whose unit/cycle are not integers cannot be placed
  (no machine or time): it goes to the adapter quarantine, as does a RUL file whose length
  does not match the number of test units.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pyarrow as pa

from mfg_pipeline.landing.adapters.common import (
    AdapterReport,
    csv_bytes,
    day,
    finish,
    minute_stamp,
    parquet_bytes,
    write_if_changed,
)

SOURCE = "cmapss"
SUBSETS = ("FD001", "FD002", "FD003", "FD004")
PLANTS = tuple(f"cmapss_{s.lower()}" for s in SUBSETS)
OPS = ("op1", "op2", "op3")
SENSORS = tuple(f"s{i}" for i in range(1, 22))
CHANNELS = OPS + SENSORS
# Li et al. 2018 / rul-datasets: the 14 sensors that carry degradation information.
INFORMATIVE = ("s2", "s3", "s4", "s7", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s17", "s20", "s21")
WINDOWS = {"FD001": 30, "FD002": 20, "FD003": 30, "FD004": 15}
SPLIT_DAY = {"train": 0, "test": 1}
# Generous physical ranges around everything observed in FD001-FD004 (no real reading is out).
RANGES = {
    "op1": (-1.0, 50.0), "op2": (-0.1, 1.0), "op3": (0.0, 120.0),
    "s1": (300.0, 700.0), "s2": (400.0, 800.0), "s3": (1000.0, 2000.0), "s4": (800.0, 1800.0),
    "s5": (0.0, 30.0), "s6": (0.0, 40.0), "s7": (0.0, 800.0), "s8": (1500.0, 2800.0),
    "s9": (6000.0, 11000.0), "s10": (0.0, 3.0), "s11": (20.0, 70.0), "s12": (0.0, 700.0),
    "s13": (1500.0, 2800.0), "s14": (6000.0, 10000.0), "s15": (5.0, 15.0), "s16": (0.0, 0.1),
    "s17": (200.0, 500.0), "s18": (1500.0, 2800.0), "s19": (50.0, 120.0), "s20": (0.0, 60.0),
    "s21": (0.0, 40.0),
}
_MACHINE = re.compile(r"^(FD00[1-4])-(train|test)-(\d{3,})$")


def machine_id(subset: str, split: str, unit: int) -> str:
    return f"{subset}-{split}-{unit:03d}"


def parse_machine_id(machine: str) -> tuple[str, str, int]:
    """``FD001-test-007`` -> ("FD001", "test", 7)."""
    match = _MACHINE.match(machine)
    if not match:
        raise ValueError(f"not a C-MAPSS machine id: {machine!r}")
    return match.group(1), match.group(2), int(match.group(3))


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        return fh.read().splitlines()


def _read_split(path: Path, report: AdapterReport, limit: int | None) -> dict[int, list[tuple[int, list[str]]]]:
    """unit -> [(cycle, 24 value tokens)], in file order; unplaceable lines quarantined."""
    units: dict[int, list[tuple[int, list[str]]]] = {}
    for number, line in enumerate(_lines(path), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 2 + len(CHANNELS):
            report.quarantine(path.name, number, f"expected {2 + len(CHANNELS)} fields, got {len(tokens)}", line)
            continue
        try:
            unit, cycle = int(tokens[0]), int(tokens[1])
        except ValueError:
            report.quarantine(path.name, number, "unit or cycle is not an integer", line)
            continue
        if unit < 1 or cycle < 1 or cycle > 1440:
            report.quarantine(path.name, number, f"unit/cycle out of range (unit {unit}, cycle {cycle})", line)
            continue
        if limit is not None and unit not in units and len(units) >= limit:
            continue
        units.setdefault(unit, []).append((cycle, tokens[2:]))
    return units


def adapt(source_dir: Path, landing_root: Path, limit: int | None = None,
          subsets: tuple[str, ...] = SUBSETS) -> list[AdapterReport]:
    """Write the four plants; ``limit`` keeps the first N engines of each split (tests)."""
    source_dir, landing_root = Path(source_dir), Path(landing_root)
    reports = []
    for subset in subsets:
        plant = f"cmapss_{subset.lower()}"
        root = landing_root / plant
        report = AdapterReport(SOURCE, plant)
        for split, offset in SPLIT_DAY.items():
            path = source_dir / f"{split}_{subset}.txt.gz"
            if not path.exists():
                report.quarantine(path.name, None, "source file missing")
                continue
            units = _read_split(path, report, limit)
            rul = _test_rul(source_dir, subset, units, report) if split == "test" else {}
            when = day(offset)
            columns: dict[str, list[str]] = {"timestamp": [], "machine_id": [], **{c: [] for c in CHANNELS}}
            events = []
            for unit in sorted(units):
                rows = units[unit]
                machine = machine_id(subset, split, unit)
                for cycle, values in rows:
                    columns["timestamp"].append(minute_stamp(cycle - 1, when))
                    columns["machine_id"].append(machine)
                    for name, value in zip(CHANNELS, values):
                        columns[name].append(value)
                last = max(cycle for cycle, _ in rows)
                if split == "train":
                    events.append((minute_stamp(last - 1, when), machine, "failure"))
                elif unit in rul:
                    events.append((minute_stamp(last - 1 + rul[unit], when), machine, "failure"))
            report.records += len(columns["timestamp"])
            table = pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()})
            write_if_changed(root / "sensor" / when / f"{subset}-{split}.parquet", parquet_bytes(table), report, landing_root)
            write_if_changed(root / "labels" / "failures" / when / f"{subset}-{split}.csv",
                             csv_bytes(("timestamp", "machine_id", "event"), events), report, landing_root)
        reports.append(finish(report, root, landing_root))
    return reports


def _test_rul(source_dir: Path, subset: str, units: dict, report: AdapterReport) -> dict[int, int]:
    """Test unit -> true RUL after its last cycle (line i of RUL_FD00N is unit i)."""
    path = source_dir / f"RUL_{subset}.txt.gz"
    if not path.exists():
        report.quarantine(path.name, None, "RUL file missing: test engines get no failure event")
        return {}
    values: dict[int, int] = {}
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            values[number] = int(float(line.split()[0]))
        except ValueError:
            report.quarantine(path.name, number, "RUL is not a number", line)
    missing = sorted(set(units) - set(values))
    for unit in missing:
        report.quarantine(path.name, unit, "no true RUL for this test unit: no failure event written")
    return values
