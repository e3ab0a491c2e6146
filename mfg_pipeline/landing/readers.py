"""Streaming readers for landing-zone tables.

Every value is read as text (typing is the cleaning stage's job), every malformed line and
unreadable file becomes a ``Rejected`` record with a reason, and files are read in batches so
memory does not grow with file size or count.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mfg_pipeline.landing.contract import LandingFile, unsafe_name_reason

BATCH_BYTES = 8 << 20
SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
REJECTED_COLUMNS = ("source_file", "source_row", "reason", "record")
NO_ROWS = "no data rows (header only)"


@dataclass(frozen=True)
class Rejected:
    source_file: str
    source_row: int | None
    reason: str
    record: str = ""

    def as_dict(self) -> dict:
        return {"source_file": self.source_file, "source_row": self.source_row,
                "reason": self.reason, "record": self.record[:2000]}


def rejected_frame(rejected: list[Rejected]) -> pd.DataFrame:
    frame = pd.DataFrame([r.as_dict() for r in rejected], columns=list(REJECTED_COLUMNS))
    return frame.astype({"source_file": "string", "source_row": "Int64", "reason": "string", "record": "string"})


def file_problem(file: LandingFile, suffixes: tuple[str, ...]) -> str | None:
    """A reason to refuse the whole file before reading it, or None."""
    reason = unsafe_name_reason(file.relative)
    if reason:
        return reason
    if file.path.is_symlink():
        return "symbolic link refused (it could point outside the landing zone)"
    if file.path.suffix.lower() not in suffixes:
        return f"unsupported file type {file.path.suffix or '(none)'!r}; expected one of {', '.join(suffixes)}"
    if file.size == 0:
        return "empty file (0 bytes)"
    return None


def _header(path) -> list[str]:
    with open(path, "rb") as fh:
        first = fh.readline()
    return [name.strip() for name in first.decode("utf-8-sig", errors="replace").rstrip("\r\n").split(",")]


def _decode_batch(table: pa.Table, file: LandingFile, first_row: int) -> tuple[pd.DataFrame, list[Rejected]]:
    """Binary columns -> text; a row with bytes that are not UTF-8 is rejected, not dropped."""
    rejected: list[Rejected] = []
    bad = pd.Series(False, index=range(table.num_rows))
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_binary(column.type):
            try:
                column = column.cast(pa.string())
            except pa.ArrowInvalid:
                values = column.to_pylist()
                decoded = []
                for i, value in enumerate(values):
                    try:
                        decoded.append(None if value is None else value.decode("utf-8"))
                    except UnicodeDecodeError:
                        bad.iloc[i] = True
                        decoded.append(None)
                column = pa.array(decoded, type=pa.string())
        elif not pa.types.is_string(column.type):
            column = _to_text(column)
        columns[name] = column
    frame = pa.table(columns).to_pandas(types_mapper=lambda t: pd.StringDtype() if t == pa.string() else None)
    frame[SOURCE_FILE] = file.relative
    frame[SOURCE_ROW] = range(first_row, first_row + len(frame))
    if bad.any():
        for row in frame.index[bad.to_numpy()]:
            rejected.append(Rejected(file.relative, first_row + int(row), "bytes that are not valid UTF-8"))
        frame = frame[~bad.to_numpy()]
    return frame, rejected


def _to_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type):
        unit_tz = column.type.tz
        series = column.to_pandas()
        if unit_tz is None:
            series = series.dt.tz_localize("UTC")
        return pa.chunked_array([pa.array(series.map(lambda v: None if pd.isna(v) else v.isoformat()), type=pa.string())])
    return column.cast(pa.string())


def read_table(file: LandingFile, suffixes: tuple[str, ...]) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
    """Yield (text-typed batch with source columns, rejected rows) for one landing file."""
    problem = file_problem(file, suffixes)
    if problem:
        yield _empty(), [Rejected(file.relative, None, problem)]
        return
    try:
        if file.path.suffix.lower() == ".parquet":
            yield from _read_parquet(file)
        else:
            yield from _read_csv(file)
    # ArrowException also covers ArrowNotImplementedError (e.g. a nested Parquet column).
    except (pa.ArrowException, OSError, ValueError) as error:
        yield _empty(), [Rejected(file.relative, None, f"unreadable file: {str(error).splitlines()[0][:300]}")]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({SOURCE_FILE: pd.Series(dtype="string"), SOURCE_ROW: pd.Series(dtype="int64")})


def _read_csv(file: LandingFile) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
    names = _header(file.path)
    if len(set(names)) != len(names) or any(not n for n in names):
        yield _empty(), [Rejected(file.relative, None, f"bad header {names!r}: empty or duplicate column names")]
        return
    done = {"rows": 0, "malformed": 0}  # records already yielded
    block = BATCH_BYTES
    while True:
        try:
            yield from _csv_batches(file, names, block, done)
            break
        except pa.ArrowInvalid as error:
            # A record longer than two blocks (a huge text field) cannot be chunked: read the
            # file again with bigger blocks, skipping the records already yielded.
            if "straddl" in str(error) and block <= file.size:
                block = min(block * 8, file.size + 1)
                continue
            # pyarrow cannot pass a malformed line that is not UTF-8 to the row handler and fails
            # the read instead: the rest of the file is read by Python's csv module.
            if not str(error).startswith("CSV parse error"):
                raise
            yield from _python_csv_batches(file, names, done)
            break
    if done["rows"] == 0 and done["malformed"] == 0:
        yield _empty(), [Rejected(file.relative, None, NO_ROWS)]


def _csv_batches(file: LandingFile, names: list[str], block: int,
                 done: dict[str, int]) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
    skip_rows, skip_malformed = done["rows"], done["malformed"]
    malformed: list[Rejected] = []
    seen = 0

    def on_invalid(row) -> str:
        nonlocal seen
        seen += 1
        if seen > skip_malformed:
            malformed.append(Rejected(file.relative, None,
                                      f"malformed CSV line: expected {row.expected_columns} fields, got {row.actual_columns}",
                                      row.text or ""))
        return "skip"

    with _row_text_errors_handled():
        reader = pacsv.open_csv(
            file.path,
            read_options=pacsv.ReadOptions(block_size=block, column_names=names, skip_rows=1),
            # newlines_in_values: a quoted field may hold a line break (RFC 4180); without it a
            # record straddling a block boundary is split into two malformed lines.
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.binary() for n in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    parsed = 0
    while True:
        with _row_text_errors_handled():
            batch = next(reader, None)
        if batch is None:
            break
        already = min(max(0, skip_rows - parsed), batch.num_rows)
        parsed += batch.num_rows
        batch = batch.slice(already)
        frame, rejected = _decode_batch(pa.Table.from_batches([batch]), file, done["rows"] + 1)
        done["rows"] += batch.num_rows
        done["malformed"] += len(malformed)
        yield frame, rejected + malformed
        malformed.clear()
    if malformed:
        done["malformed"] += len(malformed)
        yield _empty(), list(malformed)


@contextmanager
def _row_text_errors_handled() -> Iterator[None]:
    """pyarrow reports the UnicodeDecodeError of a malformed line that is not UTF-8 as an
    'Exception ignored' message before failing the read, which ``_read_csv`` handles: that
    message is silenced while pyarrow parses, every other one passes."""
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, UnicodeDecodeError):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _python_csv_batches(file: LandingFile, names: list[str], done: dict[str, int],
                        batch_rows: int = 65536) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
    """The records not yet yielded, read as pyarrow would (blank lines skipped, a line with the
    wrong number of fields malformed, a row with bytes that are not UTF-8 rejected) by Python's
    csv module, whose ``surrogateescape`` decoding keeps such bytes to be found."""
    skip_rows, skip_malformed = done["rows"], done["malformed"]
    rows = malformed = 0
    kept: list[list[str]] = []
    kept_rows: list[int] = []
    rejected: list[Rejected] = []

    def flush() -> tuple[pd.DataFrame, list[Rejected]]:
        frame = pd.DataFrame(kept, columns=names, dtype=pd.StringDtype())
        frame[SOURCE_FILE] = file.relative
        frame[SOURCE_ROW] = kept_rows
        out = frame, list(rejected)
        kept.clear()
        kept_rows.clear()
        rejected.clear()
        return out

    with open(file.path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        fh.readline()  # the header, as _header read it
        try:
            for record in csv.reader(fh):
                if not record:
                    continue
                if len(record) != len(names):
                    malformed += 1
                    if malformed > skip_malformed:
                        line = ",".join(record).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                        rejected.append(Rejected(file.relative, None, f"malformed CSV line: expected {len(names)} "
                                                                      f"fields, got {len(record)}", line))
                        done["malformed"] += 1
                    continue
                rows += 1
                if rows <= skip_rows:
                    continue
                done["rows"] += 1
                if any(_not_utf8(value) for value in record):
                    rejected.append(Rejected(file.relative, done["rows"], "bytes that are not valid UTF-8"))
                else:
                    kept.append(record)
                    kept_rows.append(done["rows"])
                if len(kept) + len(rejected) >= batch_rows:
                    yield flush()
        except csv.Error as error:
            raise ValueError(f"CSV parse error after row {done['rows']}: {error}") from error
    if kept or rejected:
        yield flush()


def _not_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:  # a lone surrogate: an undecodable byte kept by surrogateescape
        return True


def _read_parquet(file: LandingFile) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
    handle = pq.ParquetFile(file.path)
    row = 1
    for batch in handle.iter_batches(batch_size=65536):
        frame, rejected = _decode_batch(pa.Table.from_batches([batch]), file, row)
        row += batch.num_rows
        yield frame, rejected
    if row == 1:
        yield _empty(), [Rejected(file.relative, None, NO_ROWS)]
