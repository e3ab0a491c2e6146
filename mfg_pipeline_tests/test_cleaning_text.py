"""Bad maintenance-log input: undecodable bytes, huge or empty fields, unknown classes; the good
lines of the same file flow and records in = kept + quarantined."""

from __future__ import annotations

import pytest

from mfg_pipeline.cleaning.text import normalise_text
from mfg_pipeline_tests.landing_kit import DAY, TEXT_HEADER, TEXT_RULES, Drop, csv_text

GOOD = [f"{DAY}T08:00:00Z,M01,replaced fuse in cabinet,electrical",
        f"{DAY}T09:00:00Z,M01,hose leaking at pump,hydraulic",
        f"{DAY}T10:00:00Z,M01,checked guard rails,"]


@pytest.fixture
def drop(tmp_path):
    drop = Drop(tmp_path)
    drop.write("text", f"{DAY}/good.csv", csv_text(TEXT_HEADER, GOOD))
    return drop


def good_flows(out) -> None:
    kept = out.kept[out.kept["machine_id"] == "M01"]
    assert kept["text"].tolist() == ["replaced fuse in cabinet", "hose leaking at pump", "checked guard rails"]


def test_non_utf8_bytes_reject_only_their_rows(drop):
    data = (TEXT_HEADER + "\n"
            + f"{DAY}T11:00:00Z,M02,motor ok,electrical\n").encode()
    data += f"{DAY}T11:05:00Z,M02,Temperatur zu hoch: ".encode() + "Überhitzung".encode("latin-1") + b",\n"
    data += f"{DAY}T11:10:00Z,M02,\xff\xfe\x00garbage,\n".encode("latin-1")
    data += f"{DAY}T11:15:00Z,M02,pump ok,hydraulic\n".encode()
    drop.write("text", f"{DAY}/latin1.csv", data)
    out = drop.run("text")
    out.assert_accounting()
    rejected = out.quarantine[out.quarantine["source_file"] == f"{DAY}/latin1.csv"]
    assert rejected["reason"].tolist() == ["bytes that are not valid UTF-8"] * 2
    assert sorted(rejected["source_row"].tolist()) == [2, 3]
    assert out.kept.loc[out.kept["machine_id"] == "M02", "text"].tolist() == ["motor ok", "pump ok"]
    good_flows(out)


def test_huge_text_fields_are_quarantined_and_the_rest_of_the_file_flows(drop):
    huge = "x" * (9 << 20)  # larger than one read block
    rows = [f"{DAY}T12:00:00Z,M02,before,", f"{DAY}T12:01:00Z,M02,{huge},", f'{DAY}T12:02:00Z,M02,"{"y" * 201}",',
            f"{DAY}T12:03:00Z,M02,after,"]
    drop.write("text", f"{DAY}/huge.csv", csv_text(TEXT_HEADER, rows))
    out = drop.run("text")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/huge.csv") == [f"text longer than {TEXT_RULES.max_chars} characters"] * 2
    assert out.quarantine["record"].str.len().max() <= 2000  # quarantine stays small
    assert out.kept.loc[out.kept["machine_id"] == "M02", "text"].tolist() == ["before", "after"]
    good_flows(out)


def test_labels_naming_unknown_classes_are_quarantined(drop):
    rows = [f"{DAY}T13:00:00Z,M02,water on the floor,plumbing", f"{DAY}T13:01:00Z,M02,cable cut,ELECTRICAL ",
            f"{DAY}T13:02:00Z,M02,noise,  "]
    drop.write("text", f"{DAY}/labels.csv", csv_text(TEXT_HEADER, rows))
    out = drop.run("text")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/labels.csv") == ["label names an unknown class: plumbing"]
    m02 = out.kept[out.kept["machine_id"] == "M02"]
    assert m02["label"].iloc[0] == "electrical" and m02["label"].isna().tolist() == [False, True]
    good_flows(out)


def test_empty_and_control_only_text_is_quarantined(drop):
    rows = [f"{DAY}T14:00:00Z,M02,,", f'{DAY}T14:01:00Z,M02,"   ",', f"{DAY}T14:02:00Z,M02,\x01\x02\x7f,",
            f"{DAY}T14:03:00Z,,orphan line,", f"yesterday,M02,when?,"]
    drop.write("text", f"{DAY}/empty.csv", csv_text(TEXT_HEADER, rows))
    out = drop.run("text")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/empty.csv") == ["empty text", "empty text", "missing machine_id",
                                              "text empty after normalisation", "unparseable timestamp"]
    good_flows(out)


def test_quoted_newlines_crlf_bom_and_control_characters_are_normalised(drop):
    data = ("\ufeff" + TEXT_HEADER + "\r\n"
            + f'{DAY}T15:00:00Z,M02,"Line one\r\nline\ttwo, with comma",\r\n'
            + f"{DAY}T15:01:00Z,M02,NUL\x00inside  and ＦＵＬＬＷＩＤＴＨ,\r\n")
    drop.write("text", f"{DAY}/windows.csv", data)
    out = drop.run("text")
    out.assert_accounting()
    assert out.clean.quarantined == 0
    assert out.kept.loc[out.kept["machine_id"] == "M02", "text"].tolist() == [
        "line one line two, with comma", "nul inside and fullwidth"]
    assert all(normalise_text(t) == t for t in out.kept["text"])


def test_a_drop_without_a_text_column_is_quarantined_whole(tmp_path):
    drop = Drop(tmp_path)
    drop.write("text", f"{DAY}/notes.csv", "timestamp,machine_id,note\n" f"{DAY}T01:00:00Z,M01,hello\n")
    out = drop.run("text")
    out.assert_accounting()
    assert out.reasons() == ["missing required column(s): text"]


def test_a_record_longer_than_two_read_blocks_does_not_break_its_file(drop, monkeypatch):
    from mfg_pipeline.landing import readers

    monkeypatch.setattr(readers, "BATCH_BYTES", 256)  # the same code path as a > 16 MiB field at 8 MiB blocks
    rows = [f"{DAY}T16:{m:02d}:00Z,M02,line {m}," for m in range(20)]
    rows[7] = f'{DAY}T16:07:00Z,M02,"{"z" * 600}\n{"w" * 600}",'
    rows[12] = f"{DAY}T16:12:00Z,M02"  # a malformed line after the restart point is reported once
    drop.write("text", f"{DAY}/long.csv", csv_text(TEXT_HEADER, rows))
    out = drop.run("text")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/long.csv") == ["malformed CSV line: expected 4 fields, got 2",
                                             f"text longer than {TEXT_RULES.max_chars} characters"]
    assert out.kept.loc[out.kept["machine_id"] == "M02", "text"].tolist() == [
        f"line {m}" for m in range(20) if m not in (7, 12)]
    good_flows(out)
