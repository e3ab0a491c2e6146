"""Tasks: registry, heads, classical baselines, the label-efficiency protocol, metrics, reports."""
