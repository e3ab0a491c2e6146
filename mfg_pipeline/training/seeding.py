"""Seeds and random-number-generator state (saved with checkpoints for exact resume)."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def derive_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from parts (no Python ``hash``: it is salted per process)."""
    value = 1469598103934665603
    for part in parts:
        for byte in str(part).encode():
            value = ((value ^ byte) * 1099511628211) % (2**64)
        value = ((value ^ 0xFF) * 1099511628211) % (2**64)
    return value % (2**63)


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def get_rng_state() -> dict[str, torch.Tensor]:
    """Torch global RNG state as tensors (safetensors-friendly)."""
    state = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"rng.cuda.{i}"] = s
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    if "rng.cpu" in state:
        torch.set_rng_state(state["rng.cpu"].to(torch.uint8).cpu())
    cuda = sorted(k for k in state if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state[k].to(torch.uint8).cpu() for k in cuda])
