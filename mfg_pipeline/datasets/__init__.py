"""Corpora (unlabeled) and labeled task datasets built from cleaned partitions."""

# The public datasets (issue 12) register their builders in ``labeled.DATASETS`` on import;
# importing them here makes the registry complete whichever datasets module is imported first.
from mfg_pipeline.datasets import public as _public  # noqa: E402,F401
