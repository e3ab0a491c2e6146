#!/usr/bin/env bash
# The public benchmark on a lent GPU machine (the `device` tool's `run`), one call per group of plants.
#
# That machine has PyTorch, pandas, scikit-learn and transformers but not Dagster, and reaches no
# package index; a call carries at most 64 MiB, less than the datasets (68 MB). So, here first:
#   make device-bundle        # .device/whl: the wheels it lacks (12 MB); .device/datasets -> ../shared/datasets
# then one call per group, each carrying the wheels and its datasets' folders (with the 1 MB of tracked
# files: 52 MB for the first call below, 42 MB for the second), e.g.
#   run(command="bash benchmarks/device_benchmark.sh cmapss_fd001,cmapss_fd002,cmapss_fd003,cmapss_fd004,cwru,ai4i,maintenance",
#       carry=[".device/whl", ".device/datasets/cmapss", ".device/datasets/cwru", ".device/datasets/ai4i2020",
#              ".device/datasets/maintenance_text"], timeout_s=540)
#   run(command="bash benchmarks/device_benchmark.sh neu", carry=[".device/whl", ".device/datasets/neu_surface"])
# The universal sensor backbone pretrains on the sensor corpora the call holds (here the first
# call's: C-MAPSS, CWRU, the simulator's). Each call writes the reports and its log under $OUT.
# Here, the same script checks itself: PYTHON=.venv/bin/python MFG_DEVICE=cpu MFG_PRECISION=fp32
# bash benchmarks/device_benchmark.sh ai4i --seeds 0 (output under /tmp/device_benchmark).
set -euo pipefail
plants=${1:?"plants, comma-separated (as python -m benchmarks.public_benchmark --only), then its other options"}
shift
out=${OUT:-/tmp/device_benchmark}
mkdir -p "$out"
python=${PYTHON:-python3}
site=/tmp/site
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$python" -c "import dagster" 2>/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .device/whl/*.whl
fi
export MFG_PUBLIC_DATASETS="${MFG_PUBLIC_DATASETS:-$PWD/.device/datasets}"
export MFG_DEVICE="${MFG_DEVICE:-cuda}" MFG_PRECISION="${MFG_PRECISION:-bf16}"
export DAGSTER_HOME="$PWD/data/dagster_home" PYTHONUNBUFFERED=1
mkdir -p "$DAGSTER_HOME" && touch "$DAGSTER_HOME/dagster.yaml"
# what the run depends on, first: a version the code does not take fails here, not an hour in
"$python" - <<'EOF'
import importlib
for name in ("torch", "torchvision", "dagster", "pandas", "pyarrow", "numpy", "transformers", "tokenizers", "safetensors", "sklearn"):
    print(name, importlib.import_module(name).__version__)
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF
status=0
"$python" -m benchmarks.public_benchmark --only "$plants" --workers "${MFG_WORKERS:-4}" "$@" 2>&1 | tee "$out/benchmark.log" || status=$?
cp data/reports/public_benchmark.md data/reports/public_benchmark.json "$out/" 2>/dev/null || true
exit "$status"
