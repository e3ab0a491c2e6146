"""Adapters: public datasets -> the landing-zone contract (``landing.contract``).

One module per dataset; each writes one or more plants under ``<landing_root>/<plant>/``,
deterministically and idempotently (unchanged files are not rewritten). No Dagster here:
an adapter is the "plant" that drops files, ingestion does not know it exists.

Unreadable records: written through when the contract can carry them (cleaning quarantines
them), else listed in ``<landing_root>/<plant>/adapter_quarantine.csv`` (see ``common``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mfg_pipeline.landing.adapters import ai4i, cmapss, cwru, maintenance, neu
from mfg_pipeline.landing.adapters.common import ADAPTER_QUARANTINE, START_DAY, AdapterReport

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Adapter:
    name: str
    source: str                     # folder under the public datasets directory
    plants: tuple[str, ...]         # landing subfolders it writes
    adapt: Callable[..., list[AdapterReport]]


ADAPTERS = {a.name: a for a in (
    Adapter("cmapss", cmapss.SOURCE, cmapss.PLANTS, cmapss.adapt),
    Adapter("cwru", cwru.SOURCE, cwru.PLANTS, cwru.adapt),
    Adapter("neu", neu.SOURCE, neu.PLANTS, neu.adapt),
    Adapter("ai4i", ai4i.SOURCE, ai4i.PLANTS, ai4i.adapt),
    Adapter("maintenance", maintenance.SOURCE, maintenance.PLANTS, maintenance.adapt),
)}


def public_datasets_dir(datasets_dir: Path | str | None = None) -> Path:
    """``datasets_dir``, else ``MFG_PUBLIC_DATASETS``, else ``<repo>/../shared/datasets``."""
    return Path(datasets_dir or os.environ.get("MFG_PUBLIC_DATASETS", REPO_ROOT.parent / "shared" / "datasets")).resolve()


def run_adapters(datasets_dir: Path, landing_root: Path, names: list[str] | None = None) -> list[AdapterReport]:
    """Run the named adapters (all by default) whose source folder exists; skip the others."""
    reports = []
    for name in names or list(ADAPTERS):
        adapter = ADAPTERS[name]
        source = Path(datasets_dir) / adapter.source
        if not source.is_dir():
            reports.append(AdapterReport(adapter.source, ",".join(adapter.plants), notes=[f"source folder {source} absent: skipped"]))
            continue
        reports.extend(adapter.adapt(source, Path(landing_root)))
    return reports


__all__ = ["ADAPTERS", "ADAPTER_QUARANTINE", "START_DAY", "Adapter", "AdapterReport", "public_datasets_dir", "run_adapters"]
