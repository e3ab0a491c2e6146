"""Crash safety of artifact writes: a writer killed (SIGKILL: no cleanup, no finally) at any
moment leaves the previous version readable and no half-written file under the target name."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from mfg_pipeline.storage import atomic, versioned
from mfg_pipeline_tests.process_kit import run_groups, task

KINDS = ("bytes", "json", "parquet", "tensors")
OLD = {"bytes": b"old value", "json": {"value": "old"}, "parquet": pd.DataFrame({"value": ["old", "older"]}),
       "tensors": {"t": torch.arange(4, dtype=torch.float32)}}
TARGET = {"bytes": "blob.bin", "json": "meta.json", "parquet": "table.parquet", "tensors": "weights.safetensors"}


def _read(kind: str, path):
    return {"bytes": lambda p: p.read_bytes(), "json": atomic.read_json, "parquet": atomic.read_parquet,
            "tensors": atomic.read_tensors}[kind](path)


def _old_value_intact(kind: str, path) -> None:
    value = _read(kind, path)
    if kind == "parquet":
        pd.testing.assert_frame_equal(value, OLD[kind])
    elif kind == "tensors":
        assert torch.equal(value["t"], OLD[kind]["t"])
    else:
        assert value == OLD[kind]


def _write_old(kind: str, path) -> None:
    getattr(atomic, f"write_{kind}")(path, OLD[kind])


def _publish_old(directory) -> str:
    def write(folder):
        (folder / "a.txt").write_text("old a")
        (folder / "b.txt").write_text("old b")
        return {"tag": "old"}
    return versioned.publish(directory, write).name


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """Every crash scenario, prepared here and killed in one batch of child processes."""
    root = tmp_path_factory.mktemp("crash")
    scenarios, tasks = {}, []
    for kind in KINDS:
        for when in ("writing", "renaming"):
            folder = root / f"{kind}-{when}"
            target = folder / TARGET[kind]
            _write_old(kind, target)
            scenarios[(kind, when)] = target
            tasks.append(task("atomic_killed", target=target, kind=kind, when=when))
    for when in ("writing", "pointer"):
        directory = root / f"publish-{when}"
        scenarios[("publish", when)] = (directory, _publish_old(directory))
        tasks.append(task("publish_killed", directory=directory, when=when))
    # Run one at a time: each child is killed by SIGKILL, so a group of one is a plain crash.
    statuses = [s for [s] in run_groups([[t] for t in tasks])]
    assert all(s == {"signal": 9, "exit": None} for s in statuses), statuses
    return scenarios


@pytest.mark.parametrize("when", ["writing", "renaming"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_atomic_write_killed_midway_leaves_the_previous_value(crashed, kind, when):
    target = crashed[(kind, when)]
    _old_value_intact(kind, target)
    others = [p.name for p in target.parent.iterdir() if p != target and not p.name.endswith(".lock")]
    # Whatever the dead writer left is a hidden temporary file, never something under the target name.
    assert all(name.startswith(f".{target.name}.") and name.endswith(".tmp") for name in others), others
    if when == "writing":
        assert len(others) == 1 and (target.parent / others[0]).stat().st_size > 0
    # And the next writer simply succeeds.
    _write_old(kind, target)
    _old_value_intact(kind, target)


@pytest.mark.parametrize("when", ["writing", "pointer"])
def test_a_publish_killed_midway_leaves_the_previous_version_current(crashed, when):
    directory, old = crashed[("publish", when)]
    assert versioned.current(directory).name == old
    assert versioned.pointer(directory)["tag"] == "old"
    folder = versioned.current(directory)
    assert (folder / "a.txt").read_text() == "old a" and (folder / "b.txt").read_text() == "old b"
    leftovers = sorted(p.name for p in directory.iterdir() if p.name not in (old, "CURRENT.json", ".CURRENT.json.lock"))
    if when == "writing":
        assert len(leftovers) == 1 and leftovers[0].startswith(".staging-")   # never under a v- name
    else:
        assert len(leftovers) == 1 and leftovers[0].startswith("v-")          # complete, but not current
        assert (directory / leftovers[0] / "b.txt").read_text() == "new b"
    # The lock died with its holder, and the next publish cleans up after the dead one (the
    # version it replaces stays for readers that resolved it just before).
    new = versioned.publish(directory, lambda f: (f / "a.txt").write_text("next") and None)
    assert versioned.current(directory) == new
    assert sorted(p.name for p in directory.iterdir()) == sorted([new.name, old, "CURRENT.json", ".CURRENT.json.lock"])


def test_a_publish_keeps_the_version_it_replaces_until_the_next_one(tmp_path):
    def version(text):
        return versioned.publish(tmp_path, lambda f: (f / "a.txt").write_text(text) and None)

    first = version("1")
    reader_resolved = versioned.current(tmp_path)  # a reader resolves the pointer ...
    second = version("2")  # ... a writer switches it ...
    assert (reader_resolved / "a.txt").read_text() == "1"  # ... and the reader can finish
    third = version("3")
    assert versioned.current(tmp_path) == third
    assert sorted(p.name for p in tmp_path.glob("v-*")) == sorted([second.name, third.name])
    assert not first.exists()


@pytest.mark.parametrize("name", ["model.pt", "model.bin", "model.pkl", "model", "model.safetensors.pt", "model.SAFETENSORS"])
def test_read_tensors_refuses_anything_but_safetensors(tmp_path, name):
    path = tmp_path / name
    atomic.write_tensors(tmp_path / "ok.safetensors", {"t": torch.ones(2)})
    path.write_bytes((tmp_path / "ok.safetensors").read_bytes())  # even valid safetensors bytes
    with pytest.raises(ValueError, match="refusing to load weights that are not .safetensors"):
        atomic.read_tensors(path)


def test_tensors_round_trip_with_metadata(tmp_path):
    tensors = {"x": torch.randn(3, 4), "y": torch.arange(5, dtype=torch.uint8)}
    path = atomic.write_tensors(tmp_path / "t.safetensors", tensors, metadata={"source": "test"})
    loaded = atomic.read_tensors(path)
    assert loaded.keys() == tensors.keys() and all(torch.equal(loaded[k], tensors[k]) for k in tensors)


def test_a_failing_write_raises_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "meta.json"
    atomic.write_json(target, {"v": 1})

    def fail(path):
        path.write_text("half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError, match="disk full"):
        atomic.atomic_write(target, fail)
    assert atomic.read_json(target) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]
    with pytest.raises(RuntimeError, match="disk full"):
        versioned.publish(tmp_path / "artifact", lambda folder: fail(folder / "x"))
    assert versioned.pointer(tmp_path / "artifact") is None
    assert [p.name for p in (tmp_path / "artifact").iterdir()] == [".CURRENT.json.lock"]
