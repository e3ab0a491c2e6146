"""The GPU-machine bundle (``make device-bundle``, ``benchmarks/device_benchmark.sh``): it carries the
pinned Dagster, and its script names every plant of the benchmark."""

import re
import subprocess
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _device_wheels() -> dict[str, str]:
    text = (REPO / "Makefile").read_text()
    block = re.search(r"^DEVICE_WHEELS :=((?:.*\\\n)*.*)$", text, re.M)
    assert block, "Makefile has no DEVICE_WHEELS"
    return dict(p.split("==") for p in block.group(1).replace("\\\n", " ").split())


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_device_wheels_carry_the_pinned_dagster_and_only_what_it_installs_here():
    wheels = _device_wheels()
    pinned = re.search(r'"dagster==([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    for name in ("dagster", "dagster-pipes", "dagster-shared"):
        assert wheels[name] == pinned, name
    # the others are Dagster's own requirements at the versions this venv resolved: each must be
    # installed here (a wrong name would carry nothing the run needs)
    missing = [name for name in wheels if not _installed(name)]
    assert not missing, f"DEVICE_WHEELS names packages not installed here: {missing}"


def test_device_benchmark_script_parses_and_names_existing_plants():
    script = REPO / "benchmarks" / "device_benchmark.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    from benchmarks.public.catalogue import PLANTS

    named = set()
    for line in script.read_text().splitlines():
        m = re.search(r"device_benchmark\.sh ([a-z0-9_,]+)", line)
        if m:
            named |= set(m.group(1).split(","))
    # the documented calls cover every plant, so that together they are the whole benchmark
    assert named == set(PLANTS)
