"""Corpora (unlabeled) and labeled task datasets built from cleaned partitions."""
