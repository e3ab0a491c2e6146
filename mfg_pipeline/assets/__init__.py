"""The Dagster layer: thin assets that call domain functions and report metadata."""
