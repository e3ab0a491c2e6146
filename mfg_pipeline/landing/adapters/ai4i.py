"""AI4I 2020 predictive maintenance (10,000 process runs) -> landing plant ``ai4i``.

- Each row is one reading of machine ``ai4i-<Type>`` (L / M / H product variant: the variant
  is carried by the machine id, so no constant one-hot channel is landed), timestamp
  ``START_DAY`` 00:00 + (UDI - 1) minutes (so seven daily partitions).
- Channels (original text values): ``air_temp_k``, ``process_temp_k``, ``speed_rpm``,
  ``torque_nm``, ``tool_wear_min``. Product ID is not landed (an identifier, no signal).
- ``Machine failure`` = 1 -> a ``labels/failures`` event at that reading's timestamp, with the
  failure modes in the optional ``failure_type`` column (``TWF+OSF``, ``unspecified`` for the
  9 failures without a mode flag). The mode columns TWF/HDF/PWF/OSF/RNF are label side only,
  never sensor channels (they leak the target). The 18 RNF rows with Machine failure = 0 are
  not failures (kept as UCI publishes them).
- A row without 14 fields or with a non-integer UDI cannot be placed in time: adapter
  quarantine. A junk value in a channel is written through (cleaning quarantines it).
"""

from __future__ import annotations

import csv
from pathlib import Path

from mfg_pipeline.landing.adapters.common import AdapterReport, csv_bytes, finish, minute_stamp, write_if_changed

SOURCE = "ai4i2020"
PLANT = "ai4i"
PLANTS = (PLANT,)
FILE = "ai4i2020.csv"
CHANNEL_SOURCE = {"air_temp_k": "Air temperature [K]", "process_temp_k": "Process temperature [K]",
                  "speed_rpm": "Rotational speed [rpm]", "torque_nm": "Torque [Nm]", "tool_wear_min": "Tool wear [min]"}
CHANNELS = tuple(CHANNEL_SOURCE)
TYPES = ("L", "M", "H")
MODES = ("TWF", "HDF", "PWF", "OSF", "RNF")
HEADER = ("UDI", "Product ID", "Type", *CHANNEL_SOURCE.values(), "Machine failure", *MODES)


def adapt(source_dir: Path, landing_root: Path, limit: int | None = None) -> list[AdapterReport]:
    """``limit`` keeps the first N rows (tests)."""
    source_dir, landing_root = Path(source_dir), Path(landing_root)
    root = landing_root / PLANT
    report = AdapterReport(SOURCE, PLANT)
    with open(source_dir / FILE, encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh))
    header, body = lines[0], lines[1:]
    if tuple(h.strip() for h in header) != HEADER:
        report.quarantine(FILE, 0, f"unexpected header {header!r}")
        return [finish(report, root, landing_root)]
    if limit is not None:
        body = body[:limit]
    readings: dict[str, list] = {}
    events: dict[str, list] = {}
    for number, row in enumerate(body, start=1):
        if len(row) != len(HEADER):
            report.quarantine(FILE, number, f"expected {len(HEADER)} fields, got {len(row)}", ",".join(row))
            continue
        record = dict(zip(HEADER, (v.strip() for v in row)))
        try:
            udi = int(record["UDI"])
        except ValueError:
            report.quarantine(FILE, number, "UDI is not an integer", ",".join(row))
            continue
        stamp = minute_stamp(udi - 1)
        when = stamp[:10]
        machine = f"ai4i-{record['Type']}"
        readings.setdefault(when, []).append((stamp, machine, *(record[c] for c in CHANNEL_SOURCE.values())))
        if record["Machine failure"] == "1":
            modes = "+".join(m for m in MODES if record[m] == "1") or "unspecified"
            events.setdefault(when, []).append((stamp, machine, "failure", modes))
        elif record["Machine failure"] != "0":
            report.quarantine(FILE, number, f"Machine failure must be 0/1, got {record['Machine failure']!r}",
                              ",".join(row))
        report.records += 1
    for when, rows in sorted(readings.items()):
        write_if_changed(root / "sensor" / when / f"ai4i2020-{when}.csv",
                         csv_bytes(("timestamp", "machine_id", *CHANNELS), rows), report, landing_root)
    for when, rows in sorted(events.items()):
        write_if_changed(root / "labels" / "failures" / when / f"ai4i2020-{when}.csv",
                         csv_bytes(("timestamp", "machine_id", "event", "failure_type"), rows), report, landing_root)
    return [finish(report, root, landing_root)]
