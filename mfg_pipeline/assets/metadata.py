"""Metadata shown in the Dagster UI: schemas, stats and previews of what an asset wrote."""


import dagster as dg
import pandas as pd

_TYPES = {"float32": "float", "float64": "float", "int64": "int", "Int64": "int", "bool": "bool"}


def table_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(str(c), _TYPES.get(str(t), str(t))) for c, t in frame.dtypes.items()])


def preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_(empty)_")
    shown = frame.head(rows).copy()
    for column in shown.columns:
        if shown[column].dtype == object:
            shown[column] = shown[column].map(lambda v: f"<{len(v)} bytes>" if isinstance(v, bytes) else v)
    return dg.MetadataValue.md(shown.to_markdown(index=False) if hasattr(shown, "to_markdown") else shown.to_string())


def numeric_stats(frame: pd.DataFrame, columns: list[str]) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_(no rows)_")
    lines = ["| channel | mean | std | min | max | null rate |", "|---|---|---|---|---|---|"]
    for column in columns:
        s = frame[column].astype("float64")
        lines.append(f"| {column} | {s.mean():.4g} | {s.std():.4g} | {s.min():.4g} | {s.max():.4g} | {s.isna().mean():.2%} |")
    return dg.MetadataValue.md("\n".join(lines))


def counts_table(counts: dict[str, int], key: str = "reason") -> dg.MetadataValue:
    if not counts:
        return dg.MetadataValue.md("_(none)_")
    lines = [f"| {key} | rows |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    return dg.MetadataValue.md("\n".join(lines))
