"""A real pretraining process killed with SIGKILL resumes from its last checkpoint and ends
with exactly the weights of an uninterrupted run (issue: crash safety)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from mfg_pipeline.modalities import get_modality
from mfg_pipeline.storage import artifacts

REPO = Path(__file__).resolve().parents[1]
STEPS, EVERY = 24, 4
PRETRAIN = """
import sys, torch
torch.set_num_threads(1)
from mfg_pipeline.modalities import get_modality
from mfg_pipeline.storage import artifacts
corpus = artifacts.load_corpus(sys.argv[1])
backbone, result = get_modality("sensor").pretrain(corpus, steps={steps}, batch_size=16, seed=3,
                                                    checkpoint_dir=sys.argv[2], checkpoint_every={every})
backbone.save(sys.argv[3])
open(sys.argv[3] + ".resumed_from", "w").write(str(result.resumed_from or 0))
"""


def _corpus(tmp_path: Path) -> Path:
    from mfg_pipeline_tests.synthetic import sensor_corpus

    artifacts.save_corpus(tmp_path / "corpus", sensor_corpus(n=96))
    return tmp_path / "corpus"


def _run(args: list[str]) -> subprocess.Popen:
    script = PRETRAIN.format(steps=STEPS, every=EVERY)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, cwd=REPO)


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return get_modality("sensor").load(directory).state_dict()


def test_killed_pretraining_resumes_to_the_uninterrupted_result(tmp_path):
    corpus = _corpus(tmp_path)
    reference = _run([str(corpus), str(tmp_path / "ref_ckpt"), str(tmp_path / "ref")])
    assert reference.wait(timeout=300) == 0

    ckpt = tmp_path / "ckpt"
    victim = _run([str(corpus), str(ckpt), str(tmp_path / "never")])
    deadline = time.monotonic() + 240
    # checkpoint.json is written last and marks a complete checkpoint (a kill between the
    # tensors and it correctly leaves nothing to resume from: waiting for the tensors raced)
    while not (ckpt / "checkpoint.json").exists() and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert (ckpt / "checkpoint.json").exists() and list(ckpt.glob("ckpt-*.safetensors")), \
        "no checkpoint was written before the kill"
    assert not (tmp_path / "never").exists()

    resumed = _run([str(corpus), str(ckpt), str(tmp_path / "resumed")])
    assert resumed.wait(timeout=300) == 0
    # It really resumed (identical weights alone would also follow from a deterministic restart).
    assert int((tmp_path / "resumed.resumed_from").read_text()) >= EVERY
    assert int((tmp_path / "ref.resumed_from").read_text()) == 0
    ref, out = _weights(tmp_path / "ref"), _weights(tmp_path / "resumed")
    assert ref.keys() == out.keys()
    for name in ref:
        assert torch.equal(ref[name], out[name]), name
