"""The public-data benchmark in parts; the command is ``python -m benchmarks.public_benchmark``."""
