"""Resolve runtime compute settings (device, precision, threads) into torch objects.

Every tensor and model goes through :class:`Runtime` so that switching a deployment to GPU
(``device="cuda"``, ``precision="bf16"``) is configuration only. No Dagster import here: the
``ComputeResource`` (or any object with ``device``/``precision``/``num_threads`` attributes)
is converted with :meth:`Runtime.from_settings`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")


def resolve_device(device: str = "auto") -> torch.device:
    name = (device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but CUDA is not available")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")


AUTO_CPU_THREADS = 1


def configure_threads(num_threads: int = 0, device: torch.device | None = None) -> int:
    """Set intra-op threads; return the count in effect.

    ``num_threads > 0`` is used as given. ``0`` means auto: one thread per process on CPU.
    Our models are small and run on shared 2-core machines, where intra-op threads fight other
    processes: a 100-step scratch finetune measured 13 s with 1 thread and 107 s with 2 under
    load (and 20 vs 44 ms per step unloaded). On CUDA the CPU thread count is left alone.
    """
    if num_threads and num_threads > 0:
        wanted = int(num_threads)
    elif device is None or device.type == "cpu":
        wanted = AUTO_CPU_THREADS
    else:
        return torch.get_num_threads()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    limit_native_threads(wanted)
    return torch.get_num_threads()


_native_limit: int | None = None


def limit_native_threads(n: int) -> None:
    """Give the BLAS (numpy, scipy) and OpenMP (scikit-learn, torch) pools ``n`` threads too.

    The probes and baselines run scikit-learn on numpy/scipy BLAS, which otherwise start one
    thread per core beside torch's one. Two processes on this 2-core machine, each fitting a
    logistic-regression CV (4,000 x 256) and a histogram boosting: 38 s and 3.7 s with the
    default pools, 3.1 s and 1.0 s with one thread each (alone: 10.7 s with 2 BLAS threads,
    3.1 s with 1). The libraries are loaded first: a pool loaded after the limit ignores it.
    """
    global _native_limit
    if _native_limit == n:
        return
    import scipy.linalg  # noqa: F401  (loads scipy's OpenBLAS; numpy's is loaded with torch)
    import sklearn.ensemble  # noqa: F401  (its histogram boosting loads scikit-learn's OpenMP)
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    _native_limit = n


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str = "fp32"
    num_threads: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; expected one of {PRECISIONS}")

    @classmethod
    def create(cls, device: str = "auto", precision: str = "fp32", num_threads: int = 0) -> "Runtime":
        resolved = resolve_device(device)
        configure_threads(num_threads, resolved)
        return cls(resolved, precision, num_threads)

    @classmethod
    def from_settings(cls, settings: Any | None = None) -> "Runtime":
        """From a ``ComputeResource`` (or anything with the same attributes), or defaults."""
        if settings is None:
            return cls.create()
        if isinstance(settings, Runtime):
            return settings
        return cls.create(
            getattr(settings, "device", "auto"),
            getattr(settings, "precision", "fp32"),
            int(getattr(settings, "num_threads", 0) or 0),
        )

    @property
    def device_type(self) -> str:
        return self.device.type

    def to(self, obj: Any) -> Any:
        """Move a tensor, module, or a dict/list/tuple of them to the device."""
        if isinstance(obj, (torch.Tensor, torch.nn.Module)):
            return obj.to(self.device)
        if isinstance(obj, dict):
            return {k: self.to(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.to(v) for v in obj)
        return obj

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when precision is bf16, otherwise a no-op context."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def describe(self) -> dict[str, Any]:
        """What computed a result. ``cpu_capability`` is the instruction set of torch's CPU kernels
        (e.g. AVX2, AVX512): the same code and seed give floats that differ in the last digits
        between CPUs (FD001's pretrained RMSE 12.40 on one, 12.43 on another), and the kernels'
        instruction set is one of the causes (MKL's code path another: README, Reproducibility)."""
        return {"device": str(self.device), "precision": self.precision, "num_threads": torch.get_num_threads(),
                "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def cpu_runtime() -> Runtime:
    return Runtime(torch.device("cpu"), "fp32", 0)
