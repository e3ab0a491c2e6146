"""Writes the simulated plant into a landing zone, file by file, atomically.

Layout (see ``mfg_pipeline.landing.contract``)::

    sensor/<day>/<machine>.csv              timestamp, machine_id, <8 channels>
    image/<day>/<machine>_<HHMMSS>_<n>.png  + image/<day>/labels.csv (file, label, machine_id, timestamp)
    text/<day>/<machine>.csv                timestamp, machine_id, text, label
    labels/quality/<day>/quality.csv        timestamp, machine_id, batch_id, passed
    labels/failures/<day>/failures.csv      timestamp, machine_id, event, failure_type

Every file of a day is a pure function of ``(config, day)``: writing one day alone gives the
same bytes as writing it inside a full run.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from mfg_pipeline.landing.contract import (
    IMAGE_LABELS_FILE,
    LABEL_TABLE_COLUMNS,
    SENSOR_KEYS,
    TEXT_COLUMNS,
    LandingLayout,
)
from mfg_pipeline.simulator.config import SimulatorConfig
from mfg_pipeline.simulator.images import day_images, png_bytes
from mfg_pipeline.simulator.plant import CHANNELS, machine_history
from mfg_pipeline.simulator.quality import day_batches
from mfg_pipeline.simulator.text import day_logs
from mfg_pipeline.storage.atomic import write_bytes

SOURCES = ("sensor", "image", "text", "quality", "failures")
FAILURE_COLUMNS = (*LABEL_TABLE_COLUMNS["failures"], "failure_type")
_DECIMALS = {
    "vibration_rms": 4,
    "bearing_temp": 2,
    "motor_temp": 2,
    "pressure": 3,
    "spindle_speed": 1,
    "torque": 2,
    "current": 3,
    "coolant_flow": 3,
}
_ROW_FORMAT = "%s,%s," + ",".join(f"%.{_DECIMALS[c]}f" for c in CHANNELS)


def days(config: SimulatorConfig) -> list[str]:
    start = dt.date.fromisoformat(config.start_day)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(config.n_days)]


def _day_index(config: SimulatorConfig, day: str) -> int:
    index = (dt.date.fromisoformat(day) - dt.date.fromisoformat(config.start_day)).days
    if not 0 <= index < config.n_days:
        raise ValueError(f"day {day} outside the simulated range {days(config)[0]}..{days(config)[-1]}")
    return index


def _timestamp(day: str, second: int) -> str:
    return f"{day}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"


def _csv_bytes(header, rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _sensor_csv(config: SimulatorConfig, m: int, day_index: int, day: str) -> tuple[bytes, int]:
    history = machine_history(config, m)
    spd = config.samples_per_day
    block = history.signals[day_index * spd : (day_index + 1) * spd]
    period = config.sample_period_s
    stamps = [_timestamp(day, i * period) for i in range(spd)]
    mid = history.machine_id
    lines = [",".join((*SENSOR_KEYS, *CHANNELS))]
    lines.extend(_ROW_FORMAT % (ts, mid, *values) for ts, values in zip(stamps, block.tolist()))
    return ("\n".join(lines) + "\n").encode("utf-8"), spd


def _day_events(config: SimulatorConfig, m: int, day_index: int) -> list[tuple[int, str, str]]:
    """``(second_of_day, event, failure_type)`` of machine ``m`` on one day."""
    spd = config.samples_per_day
    return [
        ((e.sample - day_index * spd) * config.sample_period_s, e.event, e.failure_type)
        for e in machine_history(config, m).events
        if day_index * spd <= e.sample < (day_index + 1) * spd
    ]


def write_day(landing_root: Path, config: SimulatorConfig, day: str) -> dict:
    """Write every file of one simulated day; returns the rows (images: files) per source."""
    layout = LandingLayout(Path(landing_root))
    d = _day_index(config, day)
    spd, period = config.samples_per_day, config.sample_period_s
    counts = dict.fromkeys(SOURCES, 0)
    counts.update(image_labeled=0, text_labeled=0, batches=0, failure_events=0, maintenance_events=0)
    image_rows, quality_rows, failure_rows = [], [], []

    for m in range(config.n_machines):
        history = machine_history(config, m)
        mid = history.machine_id

        data, rows = _sensor_csv(config, m, d, day)
        write_bytes(layout.day_directory("sensor", day) / f"{mid}.csv", data)
        counts["sensor"] += rows

        def wear_at(second: int, _h=history) -> float:
            return float(_h.wear[d * spd + second // period])

        for record in day_images(config, m, d, mid, wear_at):
            write_bytes(layout.day_directory("image", day) / record.file, png_bytes(record.pixels))
            image_rows.append(
                (record.file, record.label if record.labeled else "", mid, _timestamp(day, record.second))
            )
            counts["image"] += 1
            counts["image_labeled"] += record.labeled

        events = _day_events(config, m, d)
        logs = day_logs(config, m, d, mid, events)
        text_rows = [(_timestamp(day, x.second), mid, x.text, x.label if x.labeled else "") for x in logs]
        write_bytes(layout.day_directory("text", day) / f"{mid}.csv", _csv_bytes((*TEXT_COLUMNS, "label"), text_rows))
        counts["text"] += len(text_rows)
        counts["text_labeled"] += sum(x.labeled for x in logs)

        for batch in day_batches(config, m, d, day):
            counts["batches"] += 1
            if batch.inspected:
                second = (batch.end_sample - d * spd) * period
                # a batch ending at midnight is stamped 23:59:59 so it stays in its own day
                quality_rows.append((_timestamp(day, min(second, 86399)), mid, batch.batch_id, batch.passed))

        for second, event, failure_type in events:
            failure_rows.append((_timestamp(day, second), mid, event, failure_type))
            counts["failure_events" if event == "failure" else "maintenance_events"] += 1

    write_bytes(
        layout.day_directory("image", day) / IMAGE_LABELS_FILE,
        _csv_bytes(("file", "label", "machine_id", "timestamp"), image_rows),
    )
    quality_rows.sort()
    failure_rows.sort()
    write_bytes(
        layout.day_directory("quality", day) / "quality.csv", _csv_bytes(LABEL_TABLE_COLUMNS["quality"], quality_rows)
    )
    write_bytes(layout.day_directory("failures", day) / "failures.csv", _csv_bytes(FAILURE_COLUMNS, failure_rows))
    counts["quality"] = len(quality_rows)
    counts["failures"] = len(failure_rows)
    return counts


def simulate(landing_root: Path, config: SimulatorConfig) -> dict:
    """Write every day of the run; returns the summed counts plus ``days``."""
    total: dict = {}
    for day in days(config):
        for key, value in write_day(landing_root, config, day).items():
            total[key] = total.get(key, 0) + value
    total["days"] = config.n_days
    return total
