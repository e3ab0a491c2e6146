"""Untrusted artifacts: a file whose loading would run code (a pickle) dropped in place of a
tensor/model file is refused by every loader of ours, and its code never runs. And the source
never calls a loader that can execute code."""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import pandas as pd
import pytest
import torch

from mfg_pipeline.storage import artifacts, atomic, versioned
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset

PACKAGE = Path(__file__).resolve().parents[1] / "mfg_pipeline"


class _Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def _malicious_files(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    marker = tmp_path / "PWNED"
    plain = pickle.dumps(_Payload(marker))
    as_torch = tmp_path / "model.pt"
    torch.save({"weights": _Payload(marker)}, as_torch)  # what a poisoned checkpoint looks like
    assert not marker.exists()
    return marker, {"pickle": plain, "torch.save": as_torch.read_bytes()}


def test_the_payload_is_real(tmp_path):
    """Guard against a vacuous test: unpickling the payload does create the marker."""
    marker, files = _malicious_files(tmp_path)
    pickle.loads(files["pickle"])  # noqa: S301 - deliberately, to prove the payload works
    assert marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
@pytest.mark.parametrize("name", ["weights.safetensors", "model.pt", "model.bin", "model.pkl"])
def test_read_tensors_refuses_a_malicious_pickle_and_never_runs_it(tmp_path, kind, name):
    marker, files = _malicious_files(tmp_path)
    path = tmp_path / name
    path.write_bytes(files[kind])
    with pytest.raises(ValueError, match=str(path.name)):
        atomic.read_tensors(path)
    assert not marker.exists()


def _saved(tmp_path: Path, which: str) -> Path:
    index = pd.DataFrame({"machine_id": ["M01", "M02"], "split": ["train", "test"], "target": [0, 1]})
    inputs = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    directory = tmp_path / which
    if which == "corpus":
        artifacts.save_corpus(directory, Corpus("image", inputs, index))
    else:
        artifacts.save_labeled_dataset(directory, LabeledDataset("defects", "image", inputs, index, {"kind": "classification"}))
    return directory


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
@pytest.mark.parametrize("which", ["corpus", "dataset"])
def test_artifact_loaders_refuse_a_pickle_in_place_of_their_tensors(tmp_path, kind, which):
    marker, files = _malicious_files(tmp_path)
    directory = _saved(tmp_path, which)
    load = artifacts.load_corpus if which == "corpus" else artifacts.load_labeled_dataset
    assert len(load(directory)) == 2
    (versioned.current(directory) / artifacts.TENSORS).write_bytes(files[kind])
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load(directory)
    assert not marker.exists()


@pytest.mark.parametrize("member", [artifacts.INDEX, artifacts.META])
def test_artifact_loaders_refuse_a_pickle_in_place_of_their_index_or_meta(tmp_path, member):
    marker, files = _malicious_files(tmp_path)
    directory = _saved(tmp_path, "corpus")
    (versioned.current(directory) / member).write_bytes(files["pickle"])
    with pytest.raises((ValueError, UnicodeDecodeError)):
        artifacts.load_corpus(directory)
    assert not marker.exists()


# --------------------------------------------------------------------------- source scan
# Loaders that deserialise arbitrary Python objects (and so can run code): never allowed.
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
FORBIDDEN_CALLS = {"read_pickle", "unsafe_load", "full_load"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def unsafe_loads(source: str) -> list[str]:
    """Every place in ``source`` that could deserialise code, as 'line: reason'."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in FORBIDDEN_MODULES:
                    problems.append(f"{node.lineno}: imports {name}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        if last in FORBIDDEN_CALLS:
            problems.append(f"{node.lineno}: {name}()")
        if name.endswith("torch.load"):
            weights_only = _keyword(node, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                problems.append(f"{node.lineno}: {name}() without weights_only=True")
        if name.endswith("jit.load"):
            problems.append(f"{node.lineno}: {name}() (TorchScript runs code)")
        if name.endswith("yaml.load"):
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if not (loader is not None and _dotted(loader).rsplit(".", 1)[-1] in ("SafeLoader", "CSafeLoader")):
                problems.append(f"{node.lineno}: {name}() without SafeLoader")
        if last == "load" and name.split(".")[0] in ("np", "numpy"):
            allow = _keyword(node, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                problems.append(f"{node.lineno}: {name}(allow_pickle=...)")
    return problems


def test_the_scanner_finds_what_it_should():
    bad = """
import pickle
from dill import loads
import yaml, torch, numpy as np
torch.load("m.pt")
torch.load("m.pt", weights_only=False)
yaml.load(text)
yaml.load(text, Loader=yaml.Loader)
np.load("x.npy", allow_pickle=True)
pd.read_pickle("x")
torch.jit.load("m.ts")
"""
    assert len(unsafe_loads(bad)) == 9
    good = """
torch.load("m.pt", weights_only=True)
yaml.load(text, Loader=yaml.SafeLoader)
yaml.safe_load(text)
np.load("x.npy")
json.load(fh)
"""
    assert unsafe_loads(good) == []


def test_no_source_file_can_load_code_from_an_artifact():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    problems = [f"{path.relative_to(PACKAGE.parent)}:{p}" for path in files
                for p in unsafe_loads(path.read_text(encoding="utf-8"))]
    assert problems == []
    # Text check too, for code the parser sees differently (strings passed to exec, notebooks...).
    for path in files:
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"
