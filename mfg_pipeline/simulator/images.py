"""Inspection-camera images: grayscale steel-surface patches with procedural defects.

Six classes (``none`` plus five defect types, after the NEU surface-defect families). Every
image carries nuisance variation (brightness, contrast, lighting gradient, rolling texture,
sensor noise, blur) that is larger than what a defect does to the mean intensity, so the
class is in the shapes, not in the average gray level.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mfg_pipeline.simulator.config import SimulatorConfig
from mfg_pipeline.simulator.seeds import stream

IMAGE_CLASSES = ("none", "scratch", "inclusion", "patch", "pitting", "crazing")
NONE_SHARE = 0.4  # mean share of defect-free images; worn machines make a few more defects


@dataclass(frozen=True)
class ImageRecord:
    file: str
    machine_id: str
    second: int  # seconds since the day's 00:00:00 UTC
    label: str
    labeled: bool
    pixels: np.ndarray  # uint8 (size, size)


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    return yy, xx


@functools.lru_cache(maxsize=32)
def _interp_matrix(size: int, coarse: int) -> np.ndarray:
    pos = np.linspace(0, coarse - 1, size)
    lo = np.clip(np.floor(pos).astype(int), 0, coarse - 2)
    frac = pos - lo
    m = np.zeros((size, coarse))
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m


def _smooth_noise(r: np.random.Generator, size: int, coarse: int) -> np.ndarray:
    m = _interp_matrix(size, coarse)
    return m @ r.standard_normal((coarse, coarse)) @ m.T


def _box_x(a: np.ndarray, k: int) -> np.ndarray:
    """Moving average along x (wraps around; the texture is statistically stationary)."""
    c = np.cumsum(np.concatenate([a[:, -k:], a], axis=1), axis=1)
    return (c[:, k:] - c[:, :-k]) / k


def _texture(r: np.random.Generator, size: int) -> np.ndarray:
    """Rolled-steel look: streaks along the rolling direction plus low-frequency mottling."""
    fine = r.standard_normal((size, size))
    streaks = _box_x(fine, int(r.integers(5, 14)))
    streaks = 0.5 * streaks + 0.25 * (np.roll(streaks, 1, axis=0) + np.roll(streaks, -1, axis=0))
    mottle = _smooth_noise(r, size, int(r.integers(4, 8)))
    return r.uniform(0.04, 0.08) * streaks + r.uniform(0.02, 0.05) * mottle + 0.015 * fine


def _line_mask(size, cx, cy, angle, length, width, bend=0.0):
    yy, xx = _grid(size)
    dx, dy = xx - cx, yy - cy
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle) - bend * (along / max(length, 1.0)) ** 2 * length
    ends = np.clip(length / 2 - np.abs(along), 0.0, 2.0) / 2.0
    return np.exp(-((across / width) ** 2)) * ends


def _scratch(r, size):
    out = np.zeros((size, size))
    for _ in range(int(r.integers(1, 3))):
        out += _line_mask(
            size,
            r.uniform(0.25, 0.75) * size,
            r.uniform(0.25, 0.75) * size,
            r.uniform(0, np.pi),
            r.uniform(0.4, 0.95) * size,
            r.uniform(0.6, 1.4),
            bend=r.uniform(-0.15, 0.15),
        )
    sign = 1.0 if r.random() < 0.6 else -1.0  # scratches mostly catch the light
    return sign * r.uniform(0.18, 0.4) * np.minimum(out, 1.0)


def _inclusion(r, size):
    yy, xx = _grid(size)
    out = np.zeros((size, size))
    cx, cy = r.uniform(0.2, 0.8, size=2) * size
    angle = r.normal(0.0, 0.2)  # elongated along the rolling direction
    for _ in range(int(r.integers(1, 4))):
        px = cx + r.normal(0, 0.12 * size)
        py = cy + r.normal(0, 0.04 * size)
        sx, sy = r.uniform(3.0, 0.16 * size), r.uniform(0.8, 2.2)
        dx, dy = xx - px, yy - py
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        out = np.maximum(out, np.exp(-((u / sx) ** 2 + (v / sy) ** 2) ** 1.5))
    rough = 1.0 + 0.3 * _smooth_noise(r, size, 12)
    return -r.uniform(0.2, 0.4) * np.clip(out * rough, 0.0, 1.0)


def _patch(r, size):
    yy, xx = _grid(size)
    cx, cy = r.uniform(0.25, 0.75, size=2) * size
    radius = r.uniform(0.15, 0.38) * size
    dist = np.hypot((xx - cx) / r.uniform(0.7, 1.4), yy - cy) / radius
    shape = dist + 0.35 * _smooth_noise(r, size, 6)
    mask = 1.0 / (1.0 + np.exp((shape - 1.0) * 8.0))
    sign = 1.0 if r.random() < 0.5 else -1.0
    return sign * r.uniform(0.12, 0.28) * mask


def _pitting(r, size):
    yy, xx = _grid(size)
    out = np.zeros((size, size))
    cx, cy = r.uniform(0.25, 0.75, size=2) * size
    spread = r.uniform(0.08, 0.25) * size
    for _ in range(int(r.integers(15, 45))):
        px, py = cx + r.normal(0, spread), cy + r.normal(0, spread)
        rad = r.uniform(0.6, 1.6)
        out = np.maximum(out, np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * rad**2)))
    return -r.uniform(0.2, 0.4) * out


def _crazing(r, size):
    out = np.zeros((size, size))
    cx, cy = r.uniform(0.3, 0.7, size=2) * size
    spread = r.uniform(0.15, 0.35) * size
    for _ in range(int(r.integers(8, 16))):
        out = np.maximum(
            out,
            _line_mask(
                size,
                cx + r.uniform(-spread, spread),
                cy + r.uniform(-spread, spread),
                r.uniform(0, np.pi),
                r.uniform(0.1, 0.3) * size,
                r.uniform(0.45, 0.8),
                bend=r.uniform(-0.3, 0.3),
            ),
        )
    return -r.uniform(0.12, 0.28) * out


_DEFECTS = {
    "scratch": _scratch,
    "inclusion": _inclusion,
    "patch": _patch,
    "pitting": _pitting,
    "crazing": _crazing,
}


def render_image(label: str, r: np.random.Generator, size: int = 64) -> np.ndarray:
    """One ``size`` x ``size`` uint8 surface image of class ``label``."""
    yy, xx = _grid(size)
    surface = _texture(r, size)
    if label != "none":
        surface = surface + _DEFECTS[label](r, size)
    angle = r.uniform(0, 2 * np.pi)
    gradient = r.uniform(0.0, 0.25) * ((xx * np.cos(angle) + yy * np.sin(angle)) / size - 0.5)
    image = r.uniform(0.35, 0.65) + r.uniform(0.7, 1.3) * surface + gradient
    k = r.uniform(0.0, 0.25)  # slight separable blur
    for axis in (0, 1):
        image = (1 - 2 * k) * image + k * (np.roll(image, 1, axis=axis) + np.roll(image, -1, axis=axis))
    image = image + r.uniform(0.005, 0.03) * r.standard_normal((size, size))
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def sample_image_labels(r: np.random.Generator, n: int, wear=0.35) -> list[str]:
    """Classes for ``n`` images: ~40 % ``none`` (fewer on worn machines), defects balanced."""
    wear = np.broadcast_to(np.asarray(wear, dtype=float), (n,))
    p_none = np.clip(NONE_SHARE + 0.3 * (0.35 - wear), 0.2, 0.6)
    u = r.random(n)
    defect = r.integers(1, len(IMAGE_CLASSES), size=n)
    return [IMAGE_CLASSES[0] if u[i] < p_none[i] else IMAGE_CLASSES[int(defect[i])] for i in range(n)]


def day_images(config: SimulatorConfig, m: int, day_index: int, machine: str, wear_at=None) -> list[ImageRecord]:
    """Images of one machine on one day; ``wear_at(second)`` gives the machine's wear then."""
    n = config.images_per_machine_day
    r = stream(config.seed, "image", m, day_index)
    seconds = np.sort(r.integers(0, 86400, size=n))
    wear = np.array([wear_at(int(s)) for s in seconds]) if wear_at else np.full(n, 0.35)
    labels = sample_image_labels(r, n, wear)
    labeled = r.random(n) < config.image_label_fraction
    records = []
    for i in range(n):
        s = int(seconds[i])
        pixels = render_image(labels[i], stream(config.seed, "image", m, day_index, i), config.image_size)
        hhmmss = f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"
        records.append(ImageRecord(f"{machine}_{hhmmss}_{i}.png", machine, s, labels[i], bool(labeled[i]), pixels))
    return records
