"""NEU surface defects (6 classes x 300 JPEG, 200 x 200) -> landing plant ``neu``.

- Every image is copied byte for byte to ``image/<START_DAY>/<class>_<n>.jpg``; one
  ``labels.csv`` (file, label, machine_id, timestamp) beside them.
- machine_id = ``neu-`` + the first 16 hex digits of the image's sha256: the "physical thing"
  is the photographed specimen, and byte-identical files (``patches_101`` == ``patches_105``)
  are the same specimen, so any split by machine keeps them on one side.
- timestamp: synthetic, one minute apart in index order (images carry no time).
- Label = the class folder (the SOURCE.md says box names inside the XML are unreliable).
- A missing file cannot be landed: adapter quarantine. A file whose bytes do not match the
  index sha256 is still written (machine_id from the actual bytes): if it is corrupt, image
  cleaning quarantines it; the mismatch is noted in the report.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from mfg_pipeline.landing.adapters.common import AdapterReport, csv_bytes, day, finish, minute_stamp, write_if_changed

SOURCE = "neu_surface"
PLANT = "neu"
PLANTS = (PLANT,)
CLASSES = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")
IMAGE_SIZE = 200


def adapt(source_dir: Path, landing_root: Path, limit: int | None = None) -> list[AdapterReport]:
    """``limit`` keeps the first N images of each class (tests)."""
    source_dir, landing_root = Path(source_dir), Path(landing_root)
    root = landing_root / PLANT
    report = AdapterReport(SOURCE, PLANT)
    with open(source_dir / "index.csv", encoding="utf-8-sig", newline="") as fh:
        entries = list(csv.DictReader(fh))
    when = day(0)
    folder = root / "image" / when
    rows, per_class = [], {}
    for number, entry in enumerate(entries, start=1):
        label = entry.get("label", "").strip()
        per_class[label] = per_class.get(label, 0) + 1
        if limit is not None and per_class[label] > limit:
            continue
        path = source_dir / entry.get("image", "")
        if not entry.get("image") or not path.is_file():
            report.quarantine("index.csv", number, f"image file missing: {entry.get('image')!r}", ",".join(entry.values()))
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if entry.get("sha256") and entry["sha256"] != digest:
            report.notes.append(f"{entry['image']}: sha256 differs from index.csv (written through)")
        name = path.name
        write_if_changed(folder / name, data, report, landing_root)
        rows.append((name, label, f"neu-{digest[:16]}", minute_stamp(len(rows), when)))
        report.records += 1
    write_if_changed(folder / "labels.csv", csv_bytes(("file", "label", "machine_id", "timestamp"), rows),
                     report, landing_root)
    return [finish(report, root, landing_root)]
