"""Inspection images: bytes -> grayscale uint8 [1, S, S] tensors, or quarantine with a reason.

Decoding is defensive: pixel count is checked from the header before any pixel is decoded
(decompression bombs), truncated or corrupt files fail ``verify``/``load`` and are quarantined,
and any size or mode is normalised to S x S grayscale.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from mfg_pipeline.cleaning.quarantine import Quarantine
from mfg_pipeline.landing.partitioning import parse_timestamps

MAX_PIXELS = 4096 * 4096
MIN_SIDE = 8
# Only the formats of the landing contract are ever decoded, whatever the file's content says:
# Pillow would otherwise sniff dozens of formats (EPS even runs Ghostscript).
FORMATS = ("PNG", "JPEG", "BMP")


@dataclass(frozen=True)
class ImageCleaningRules:
    classes: tuple[str, ...]
    size: int = 64


def decode_image(data: bytes, size: int) -> np.ndarray:
    """Bytes -> uint8 [size, size]; raises ValueError with the reason when not a usable image."""
    if not data:
        raise ValueError("zero-byte image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
                width, height = probe.size
                if width * height > MAX_PIXELS:
                    raise ValueError(f"decompression bomb refused: {width}x{height} pixels declared")
                if min(width, height) < MIN_SIDE:
                    raise ValueError(f"image too small: {width}x{height}")
                probe.verify()
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                image.load()
                grey = image.convert("L")
                if grey.size != (size, size):
                    grey = grey.resize((size, size), Image.Resampling.BILINEAR)
                return np.asarray(grey, dtype=np.uint8).copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(f"decompression bomb refused: {error}") from error
    except UnidentifiedImageError as error:
        raise ValueError("not an image (unidentified format)") from error
    except (OSError, SyntaxError) as error:
        raise ValueError(f"corrupt or truncated image: {error}") from error


def clean_inspection_images(raw: pd.DataFrame, rules: ImageCleaningRules,
                            rejected: pd.DataFrame | None = None) -> tuple[torch.Tensor, pd.DataFrame, pd.DataFrame]:
    """Return (images uint8 [N, 1, S, S], index, quarantine)."""
    q = Quarantine(rejected)
    frame = raw.copy()
    arrays, reasons = {}, pd.Series("", index=frame.index, dtype="object")
    for row, data in zip(frame.index, frame["bytes"]):
        try:
            arrays[row] = decode_image(data, rules.size)
        except ValueError as error:
            reasons[row] = str(error)
    frame = q.reject(frame, reasons != "", reasons)
    label = frame["label"].astype("string").str.strip().str.lower()
    label = label.mask(label == "")
    frame = q.reject(frame, label.notna() & ~label.isin(rules.classes), "label names an unknown class: " + label.fillna(""))
    frame["label"] = label[frame.index]
    frame["timestamp"] = parse_timestamps(frame["timestamp"]) if len(frame) else pd.Series(dtype="datetime64[ns, UTC]")
    # Byte-identical images are kept (both are real files); splits keep one sha256 on one side.
    images = (torch.from_numpy(np.stack([arrays[i] for i in frame.index]))[:, None]
              if len(frame) else torch.zeros((0, 1, rules.size, rules.size), dtype=torch.uint8))
    index = frame[["file", "sha256", "label", "machine_id", "timestamp"]].reset_index(drop=True)
    return images, index, q.frame()
