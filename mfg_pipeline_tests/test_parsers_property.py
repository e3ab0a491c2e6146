"""Property-based tests of the two parsers that see untrusted text: the CSV reader and the
maintenance-log cleaner. For any input: no exception, every record accounted for, kept text
never empty and normalised idempotently."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from unittest import mock

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mfg_pipeline.cleaning.text import TextCleaningRules, clean_maintenance_logs, normalise_text
from mfg_pipeline.landing import contract, readers

# No example database: runs are reproducible and leave nothing in the tree.
SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ["timestamp", "machine_id", "text"]
# Everything a field may hold, weighted towards what breaks CSV: separators, quotes, line ends.
FIELD = st.text(st.one_of(st.sampled_from(list(',"\n\r\t \\;\x00\ufeff')), st.characters(exclude_categories=["Cs"])),
                max_size=12)
ROW = st.lists(FIELD, min_size=1, max_size=5)


def _read(data: bytes, block_bytes: int | None = None) -> tuple[pd.DataFrame, list[readers.Rejected]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "drop.csv"
        path.write_bytes(data)
        stat = path.stat()
        file = contract.LandingFile(path, "drop.csv", None, stat.st_size, stat.st_mtime_ns)
        frames, rejected = [], []
        with mock.patch.object(readers, "BATCH_BYTES", block_bytes or readers.BATCH_BYTES):
            for frame, bad in readers.read_table(file, (".csv",)):
                assert {readers.SOURCE_FILE, readers.SOURCE_ROW} <= set(frame.columns)
                frames.append(frame)
                rejected.extend(bad)
    assert all(r.source_file == "drop.csv" and r.reason for r in rejected)
    return pd.concat(frames, ignore_index=True), rejected


@SETTINGS
@given(st.binary(max_size=400))
@example(b"")
@example(b"a,a\n1,2\n")
@example(b'a,b\n"unterminated,1\n')
@example(b"a,b\r1,2\r3,4")
@example(b"\xff\xfe,b\n\xff,\x00\n")
def test_reading_arbitrary_bytes_never_raises(data):
    frame, rejected = _read(data)
    # No file passes unseen: it yields rows, or at least one reason (empty, bad header, no rows...).
    assert len(frame) + len(rejected) >= 1


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), ROW), min_size=1, max_size=25), st.sampled_from([None, 64, 1024]))
def test_written_rows_are_all_accounted_for_and_read_back_exactly(rows, block_bytes):
    """Rows written by a standard CSV writer, some with the wrong number of fields: every row is
    either read back verbatim (as text) or rejected as malformed; nothing vanishes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF, and fields holding CR or LF are quoted
    writer.writerow(HEADER)
    expected = []
    for well_formed, fields in rows:
        fields = (fields * 3)[:3] if well_formed else fields
        if len(fields) == 3:
            expected.append(fields)
        elif fields == [""]:
            fields = ["", ""]  # a lone empty field is written as a blank-looking '""' line
        writer.writerow(fields)
    frame, rejected = _read(buffer.getvalue().encode("utf-8"), block_bytes)
    assert len(frame) + len(rejected) == len(rows)
    assert all(r.reason.startswith("malformed CSV line") for r in rejected)
    assert frame.reindex(columns=HEADER).values.tolist() == expected


def test_a_malformed_line_that_is_not_utf8_is_rejected_and_the_rows_after_it_kept():
    # pyarrow fails the read on such a line instead of passing it to the row handler
    frame, rejected = _read(b"a,b\n1,2\n3,\xff\xfe,9\n5,6\n7,\xff\n8,9\n")
    assert frame[["a", "b"]].values.tolist() == [["1", "2"], ["5", "6"], ["8", "9"]]
    assert frame[readers.SOURCE_ROW].tolist() == [1, 2, 4]
    assert [(r.source_row, r.reason) for r in rejected] == [
        (None, "malformed CSV line: expected 2 fields, got 3"), (3, "bytes that are not valid UTF-8")]
    assert rejected[0].record == "3,\ufffd\ufffd,9"


NOT_UTF8 = "\ue000"  # written as the byte 0xff, which is no UTF-8


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.booleans(), ROW), min_size=1, max_size=25), st.sampled_from([None, 64]))
def test_rows_with_bytes_that_are_not_utf8_are_rejected_and_every_other_row_read_back(rows, block_bytes):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    expected, rejected_reasons = [], []
    for well_formed, corrupt, fields in rows:
        fields = [f.replace(NOT_UTF8, "") for f in ((fields * 3)[:3] if well_formed else fields)]
        if fields == [""]:
            fields = ["", ""]
        if corrupt:
            fields[0] += NOT_UTF8
        writer.writerow(fields)
        if len(fields) != 3:
            rejected_reasons.append("malformed CSV line")
        elif corrupt:
            rejected_reasons.append("bytes that are not valid UTF-8")
        else:
            expected.append(fields)
    data = buffer.getvalue().encode("utf-8").replace(NOT_UTF8.encode("utf-8"), b"\xff")
    frame, rejected = _read(data, block_bytes)
    assert frame.reindex(columns=HEADER).values.tolist() == expected
    assert sorted(r.reason.split(":")[0] for r in rejected) == sorted(rejected_reasons)


CLASSES = ("electrical", "hydraulic")
TEXT = st.text(st.one_of(st.sampled_from(list(" \t\n\r\x00\x01\x7f\u00a0\u2028\u200b\ufeffİıẞǅﬁ①ＡK")),
                         st.characters(exclude_categories=["Cs"])), max_size=30)
LOG_ROW = st.fixed_dictionaries({
    "timestamp": st.one_of(st.sampled_from(["2026-01-01T05:00:00Z", "2026-01-01T05:00:00+02:00", "2026-01-01 07:00"]),
                           st.text(max_size=8), st.none()),
    "machine_id": st.one_of(st.sampled_from(["M01", " M02 ", "", "  "]), st.text(max_size=4), st.none()),
    "text": st.one_of(TEXT, st.none()),
    "label": st.one_of(st.sampled_from([*CLASSES, "ELECTRICAL ", "", "plumbing"]), st.text(max_size=6), st.none()),
})


@SETTINGS
@given(st.lists(LOG_ROW, max_size=25), st.integers(min_value=1, max_value=40))
def test_cleaning_logs_accounts_for_every_row_and_keeps_only_normalised_text(rows, max_chars):
    raw = pd.DataFrame(rows, columns=["timestamp", "machine_id", "text", "label"]).astype("string")
    raw[readers.SOURCE_FILE] = "drop.csv"
    raw[readers.SOURCE_ROW] = range(1, len(raw) + 1)
    kept, quarantine = clean_maintenance_logs(raw, TextCleaningRules(CLASSES, max_chars=max_chars))
    assert len(kept) + len(quarantine) == len(raw)
    assert quarantine["reason"].notna().all() and (quarantine["reason"].str.len() > 0).all()
    assert set(quarantine["source_row"]) | set(range(1, len(raw) + 1)) == set(range(1, len(raw) + 1))
    for text in kept["text"]:
        assert text and text == normalise_text(text)
    assert kept["label"].dropna().isin(CLASSES).all()
    assert (kept["machine_id"].str.strip() != "").all()
    assert kept["timestamp"].notna().all()


@SETTINGS
@given(TEXT)
@example("İ")     # lower() of a capital dotted I yields a combining sequence
@example("ǅ")     # a title-case digraph
@example("\u0345")  # a combining mark that NFKC and lower() both touch
def test_normalise_text_is_idempotent(text):
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert once == once.strip() and "  " not in once
