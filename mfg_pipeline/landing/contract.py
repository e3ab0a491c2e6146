"""The landing-zone contract, shared by whoever writes files (simulator, adapters, a plant)
and the ingestion that reads them. Ingestion knows this module, never the writer.

Layout under the landing root (``data/raw`` for the default profile)::

    sensor/<YYYY-MM-DD>/*.csv|*.parquet   wide: timestamp, machine_id, one numeric column per channel
    image/<YYYY-MM-DD>/*.png|*.jpg|*.jpeg|*.bmp
    image/<YYYY-MM-DD>/labels.csv         optional: file, label [, machine_id, timestamp]
    text/<YYYY-MM-DD>/*.csv               timestamp, machine_id, text [, label]
    labels/quality/<YYYY-MM-DD>/*.csv     timestamp, machine_id, batch_id, passed (0/1)
    labels/failures/<YYYY-MM-DD>/*.csv    timestamp, machine_id, event (failure|maintenance) [, failure_type]
    labels/recordings/<YYYY-MM-DD>/*.csv  timestamp, machine_id, label [, any condition columns]
                                          one row per recording (machine): its class and
                                          conditions (e.g. motor load), timestamp = its start

The date folder is optional for tabular files: every row goes to the daily partition of its
own timestamp (UTC), so a late file, or one that spans midnight, lands in the right partitions.
Naive timestamps are taken as UTC; offsets (``+02:00``) are converted to UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MODALITIES = ("sensor", "image", "text")
LABEL_TABLES = ("quality", "failures", "recordings")

SENSOR_KEYS = ("timestamp", "machine_id")
TEXT_COLUMNS = ("timestamp", "machine_id", "text")
TEXT_OPTIONAL = ("label",)
IMAGE_LABELS_FILE = "labels.csv"
IMAGE_LABEL_COLUMNS = ("file", "label")
IMAGE_LABEL_OPTIONAL = ("machine_id", "timestamp")
LABEL_TABLE_COLUMNS = {
    "quality": ("timestamp", "machine_id", "batch_id", "passed"),
    "failures": ("timestamp", "machine_id", "event"),
    "recordings": ("timestamp", "machine_id", "label"),
}

SUFFIXES = {
    "sensor": (".csv", ".parquet"),
    "image": (".png", ".jpg", ".jpeg", ".bmp"),
    "text": (".csv",),
    "quality": (".csv",),
    "failures": (".csv",),
    "recordings": (".csv",),
}

_DAY = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
# Anything a file name may safely contain; the rest (path separators, control characters,
# "..") is refused at discovery so that no derived path can escape the work directories.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+=, -]{0,200}$")


@dataclass(frozen=True)
class LandingFile:
    path: Path
    relative: str
    day_hint: str | None
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        return f"{self.relative}:{self.size}:{self.mtime_ns}"


@dataclass(frozen=True)
class LandingLayout:
    root: Path

    def directory(self, source: str) -> Path:
        """Folder of a modality (``sensor``) or a label table (``quality``)."""
        if source in MODALITIES:
            return self.root / source
        if source in LABEL_TABLES:
            return self.root / "labels" / source
        raise ValueError(f"unknown landing source {source!r}; expected one of {MODALITIES + LABEL_TABLES}")

    def day_directory(self, source: str, day: str) -> Path:
        return self.directory(source) / day


def day_from_path(relative: str) -> str | None:
    """The first ``YYYY-MM-DD`` in a relative path (folder or file name), if any."""
    match = _DAY.search(relative)
    return match.group(1) if match else None


def unsafe_name_reason(relative: str) -> str | None:
    """Why a landing path is refused, or None when it is acceptable."""
    parts = Path(relative).parts
    for part in parts:
        # fullmatch, not match: "$" would accept a name ending in a newline.
        if part in ("..", ".") or not _SAFE_NAME.fullmatch(part):
            return f"unsafe file name component {part!r} (path traversal or odd characters)"
    return None


def discover(layout: LandingLayout, source: str) -> list[LandingFile]:
    """Every candidate file of one source, sorted by relative path (deterministic order).

    Files with a wrong suffix are still returned when they sit in the source folder, so that
    ingestion can quarantine them with a reason instead of silently ignoring them; the
    image labels CSV is excluded from the image files.
    """
    base = layout.directory(source)
    if not base.exists():
        return []
    found = []
    for path in sorted(base.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(base).as_posix()
        if source == "image" and path.name == IMAGE_LABELS_FILE:
            continue
        stat = path.stat()
        found.append(LandingFile(path, relative, day_from_path(relative), stat.st_size, stat.st_mtime_ns))
    return found


def image_label_files(layout: LandingLayout) -> list[Path]:
    base = layout.directory("image")
    return sorted(base.rglob(IMAGE_LABELS_FILE)) if base.exists() else []
