"""Multi-file artifacts published atomically.

An artifact directory holds immutable version folders ``v-<version>/`` and a ``CURRENT.json``
pointer. A new version is written completely into a temporary folder, renamed into place, and
only then does the pointer switch (one atomic rename). A run killed at any moment leaves the
previous version readable; two writers of the same artifact are serialised by a lock. The
version a publish replaces is kept until the next one, so a reader that resolved the pointer
just before the switch can finish.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mfg_pipeline.storage import atomic

POINTER = "CURRENT.json"


def publish(directory: Path, write: Callable[[Path], dict[str, Any] | None], version: str | None = None) -> Path:
    """Write a new version with ``write(folder)`` and make it current; returns its folder.

    What ``write`` returns (counts, schema...) is kept in the pointer, so a caller can reuse
    an unchanged version without opening it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    version = version or uuid.uuid4().hex[:12]
    with atomic.artifact_lock(directory / POINTER):
        target = directory / f"v-{version}"
        if (pointer(directory) or {}).get("version") == version and target.is_dir():
            # A given version names its content: a concurrent writer already published it.
            # Replacing the folder would pull it from under its readers for a moment.
            return target
        previous = (pointer(directory) or {}).get("version")
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
        try:
            info = write(staging) or {}
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        atomic.write_json(directory / POINTER, {**info, "version": version})
        # The version just replaced stays until the next publish: a reader that resolved the
        # pointer a moment ago (another run reading this upstream) is still reading it.
        keep = {target.name, f"v-{previous}"}
        for old in directory.glob("v-*"):
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
        for stale in directory.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
    return target


def pointer(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / POINTER
    return atomic.read_json(path) if path.exists() else None


def current(directory: Path) -> Path:
    """The folder of the current version; FileNotFoundError when none was ever published."""
    info = pointer(directory)
    if info is None:
        raise FileNotFoundError(f"{directory}: nothing published yet (no {POINTER})")
    return Path(directory) / f"v-{info['version']}"
