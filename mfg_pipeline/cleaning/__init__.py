"""Cleaning: text-typed raw rows -> typed kept rows + quarantined rows, each with a reason."""
