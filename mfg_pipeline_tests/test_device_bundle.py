"""The GPU-machine bundle (``make device-bundle``, ``benchmarks/device_benchmark.sh``): the wheels it
carries are the versions this environment runs, so that the device run tests what CI tests."""

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


def test_device_wheels_pin_the_versions_installed_here():
    wheels = _device_wheels()
    assert {"dagster", "dagster-pipes", "dagster-shared", "sqlalchemy", "pydantic"} <= set(wheels)
    mismatched = {name: (version, metadata.version(name)) for name, version in wheels.items()
                  if metadata.version(name) != version}
    assert not mismatched, f"DEVICE_WHEELS differ from this environment (carried, installed): {mismatched}"


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
