"""Independent, reproducible random streams keyed by (seed, purpose, machine, day, ...).

Each stream depends only on its keys, never on what was drawn before, so one day of one
machine can be generated alone and still match the full history bit for bit.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(part: int | str) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode("utf-8"))
    if part < 0:
        raise ValueError("stream keys must be non-negative")
    return int(part)


def stream(seed: int, *keys: int | str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([_key(seed), *(_key(k) for k in keys)]))
