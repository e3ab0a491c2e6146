"""Artifact IO: atomic writes, safetensors tensors, Parquet tables, JSON."""
