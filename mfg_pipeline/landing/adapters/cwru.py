"""CWRU bearing vibration (12 kHz drive end) -> landing plant ``cwru``.

- Each recording (file) is a machine: ``cwru-<label>-<load>`` (``cwru-inner_race_0.007-2``).
- Channel ``de`` only: the drive-end accelerometer is the channel of the 12 kHz drive-end
  fault benchmark (WDCNN and the anchors), present in every file (BA is missing in the normal
  file); FE would double the volume for a second rig position no protocol here uses.
- Time: a 12 kHz sample period (83.33 us) is not a whole number of micro- or nanoseconds, so
  samples get a **synthetic 1 ms period** (``SYNTHETIC_PERIOD_S``); the true rate is in the
  plant config (``Plant.sample_period_s`` is the synthetic one) and in ``labels/recordings``
  (``sample_rate_hz``). Every recording of load L starts at 00:00 of day L (~122 s long), so
  the plant has four partitions, one per motor load.
- Sensor files are Parquet (``timestamp`` text, ``machine_id``, ``de`` float64), one per
  recording, ~122k rows each.
- Labels: a label table ``recordings`` (one row per recording: timestamp = its start,
  machine_id, label, fault_type, fault_diameter_in, load_hp, rpm, sample_rate_hz,
  source_sample_rate_hz, cwru_file_id, source_file).
- The normal baseline (file 97, load 0 only) was recorded at 48 kHz: it is decimated by 4 to
  12 kHz (FIR anti-alias filter, zero phase) so that every landed series has one true rate;
  it is excluded from the 9-class fault datasets (no normal at loads 1-3, see ANCHORS.md).
- A file that is missing, cannot be decompressed/decoded or has no DE channel cannot be landed
  (no rows to write): it goes to the adapter quarantine with the reason.
"""

from __future__ import annotations

import csv
import io
import lzma
from pathlib import Path

import numpy as np
import pyarrow as pa

from mfg_pipeline.landing.adapters.common import AdapterReport, csv_bytes, day, finish, parquet_bytes, write_if_changed

SOURCE = "cwru"
PLANT = "cwru"
PLANTS = (PLANT,)
SAMPLE_RATE_HZ = 12000
SYNTHETIC_PERIOD_S = 0.001
CHANNELS = ("de",)
NORMAL = "normal"
FAULT_CLASSES = tuple(f"{kind}_{size}" for kind in ("ball", "inner_race", "outer_race_6oclock")
                      for size in ("0.007", "0.014", "0.021"))
RECORDING_COLUMNS = ("timestamp", "machine_id", "label", "fault_type", "fault_diameter_in", "load_hp", "rpm",
                     "sample_rate_hz", "source_sample_rate_hz", "cwru_file_id", "source_file")


def machine_id(label: str, load: int | str) -> str:
    return f"cwru-{label}-{load}"


def _de_channel(path: Path) -> np.ndarray:
    import scipy.io

    mat = scipy.io.loadmat(io.BytesIO(lzma.open(path).read()))
    names = sorted(k for k in mat if k.endswith("_DE_time"))
    if not names:
        raise ValueError(f"no *_DE_time variable (has {sorted(k for k in mat if not k.startswith('__'))})")
    return np.asarray(mat[names[0]], dtype=np.float64).ravel()


def _timestamps(when: str, n: int) -> pa.Array:
    start = np.datetime64(f"{when}T00:00:00.000", "ms")
    return pa.array(start + np.arange(n).astype("timedelta64[ms]")).cast(pa.string())  # "2020-01-01 00:00:00.001"


def adapt(source_dir: Path, landing_root: Path, limit: int | None = None,
          max_samples: int | None = None) -> list[AdapterReport]:
    """``limit`` keeps the first N recordings (index order), ``max_samples`` their first samples (tests)."""
    source_dir, landing_root = Path(source_dir), Path(landing_root)
    root = landing_root / PLANT
    report = AdapterReport(SOURCE, PLANT)
    index_path = source_dir / "index.csv"
    if not index_path.exists():
        report.quarantine("index.csv", None, "index.csv missing: recordings cannot be labeled")
        return [finish(report, root, landing_root)]
    with open(index_path, encoding="utf-8-sig", newline="") as fh:
        entries = list(csv.DictReader(fh))
    if limit is not None:
        entries = entries[:limit]
    recordings: dict[str, list[tuple]] = {}
    for number, entry in enumerate(entries, start=1):
        path = source_dir / entry.get("file", "")
        try:
            load = int(entry["load_hp"])
            rate = int(float(entry["sample_rate_hz"]))
            label = entry["label"].strip()
            values = _de_channel(path)
        except (KeyError, ValueError, OSError, lzma.LZMAError, NotImplementedError) as error:
            report.quarantine("index.csv", number, f"recording {entry.get('file')!r} unreadable: {error}"[:300],
                              ",".join(entry.values()))
            continue
        if rate != SAMPLE_RATE_HZ:
            if rate % SAMPLE_RATE_HZ:
                report.quarantine("index.csv", number, f"sample rate {rate} Hz is not a multiple of {SAMPLE_RATE_HZ}")
                continue
            from scipy.signal import decimate

            values = decimate(values, rate // SAMPLE_RATE_HZ, ftype="fir", zero_phase=True)
            report.notes.append(f"{entry['file']}: {rate} Hz decimated to {SAMPLE_RATE_HZ} Hz")
        if max_samples is not None:
            values = values[:max_samples]
        when = day(load)
        machine = machine_id(label, load)
        table = pa.table({"timestamp": _timestamps(when, len(values)),
                          "machine_id": pa.array([machine] * len(values), type=pa.string()),
                          "de": pa.array(values, type=pa.float64())})
        write_if_changed(root / "sensor" / when / f"{machine}.parquet", parquet_bytes(table), report, landing_root)
        report.records += len(values)
        recordings.setdefault(when, []).append((
            f"{when}T00:00:00", machine, label, entry.get("fault_type", ""), entry.get("fault_diameter_in", ""),
            load, entry.get("rpm", ""), SAMPLE_RATE_HZ, rate, entry.get("cwru_file_id", ""), entry["file"]))
    for when, rows in sorted(recordings.items()):
        write_if_changed(root / "labels" / "recordings" / when / "recordings.csv",
                         csv_bytes(RECORDING_COLUMNS, sorted(rows, key=lambda r: r[1])), report, landing_root)
    return [finish(report, root, landing_root)]
