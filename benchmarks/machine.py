"""What machine a benchmark ran on: its figures (times, and the last digits of model metrics)
depend on it, so every benchmark report records it."""

from __future__ import annotations

import os
import platform
from typing import Any


def cpu_model() -> str | None:
    """The CPU's model name (Linux), or None where /proc/cpuinfo does not say."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    return {"platform": platform.platform(), "cpu": cpu_model(), "python": platform.python_version(),
            "cpus": os.cpu_count()}
