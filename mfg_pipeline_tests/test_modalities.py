import json

import pytest
import torch

from mfg_pipeline.modalities import MODALITIES, get_modality
from mfg_pipeline.modalities.base import clone
from mfg_pipeline_tests import synthetic as S

CORPORA = {
    "sensor": lambda: S.sensor_corpus(96),
    "image": lambda: S.image_corpus(48),
    "text": lambda: S.text_corpus(120),
}
DATASETS = {
    "sensor": lambda: S.sensor_dataset("failure_dataset", 40),
    "image": lambda: S.defect_dataset(24),
    "text": lambda: S.maintenance_log_dataset(30),
}
TINY = {"sensor": {"d_model": 32, "ff_dim": 64}, "image": {"view_size": 32}, "text": {"hidden_size": 32, "intermediate_size": 64,
                                                                       "vocab_size": 300}}


def test_registry_has_the_three_modalities():
    assert set(MODALITIES) >= {"sensor", "image", "text"}
    for name, spec in MODALITIES.items():
        assert spec.name == name and spec.corpus_asset == f"{name}_corpus" and spec.backbone_asset == f"{name}_backbone"


@pytest.mark.parametrize("name", ["sensor", "image", "text"])
def test_ssl_loss_decreases(name):
    spec = get_modality(name)
    steps = {"sensor": 30, "image": 30, "text": 40}[name]
    bs = {"sensor": 16, "image": 16, "text": 32}[name]
    _, result = spec.pretrain(CORPORA[name](), steps=steps, batch_size=bs, lr=3e-3, model_overrides=TINY[name])
    h = result.history
    k = max(2, steps // 4)
    assert sum(h[-k:]) / k < sum(h[:k]) / k, h


@pytest.mark.parametrize("name", ["sensor", "image", "text"])
def test_save_load_round_trip_identical_outputs(name, tmp_path):
    spec = get_modality(name)
    backbone, _ = spec.pretrain(CORPORA[name](), steps=2, batch_size=8, model_overrides=TINY[name])
    data = DATASETS[name]()
    inputs = backbone.prepare(data)
    before = backbone.embed(inputs)
    assert before.shape == (len(data), backbone.feature_dim) and torch.isfinite(before).all()
    backbone.save(tmp_path / "bb")
    meta = json.loads((tmp_path / "bb" / "config.json").read_text())
    assert meta["modality"] == name
    assert list((tmp_path / "bb").rglob("*.safetensors")), "weights must be safetensors"
    assert not list((tmp_path / "bb").rglob("*.bin")) and not list((tmp_path / "bb").rglob("*.pt"))
    loaded = spec.load(tmp_path / "bb")
    after = loaded.embed(loaded.prepare(data))
    assert torch.equal(before, after)
    # scratch twin: same architecture, different weights; clone: same weights
    twin = backbone.fresh(seed=1)
    assert sum(p.numel() for p in twin.parameters()) == backbone.num_parameters()
    assert not torch.equal(twin.embed(inputs), before)
    assert torch.equal(clone(backbone).embed(inputs), before)


def test_sensor_features_are_invariant_to_gain_and_offset_in_the_encoder():
    spec = get_modality("sensor")
    bb = spec.build(S.sensor_corpus(32), stats_features=False, d_model=32, ff_dim=64)
    x = S.sensor_dataset("failure_dataset", 8).inputs
    a = bb.embed(x)
    b = bb.embed(x * 3.0 + 7.0)
    assert torch.allclose(a, b, atol=1e-3)


def test_text_tokenizer_is_trained_on_the_corpus():
    bb = get_modality("text").build(S.text_corpus(120), **TINY["text"])
    vocab = bb.tokenizer.get_vocab()
    assert "[MASK]" in vocab and "leak" in vocab
    ids = bb.tokenize(["hydraulic hose leak"])["input_ids"][0].tolist()
    assert bb.tokenizer.token_to_id("[UNK]") not in ids
    batch = bb.tokenize(["replaced hydraulic hose", "checked"])
    assert batch["input_ids"].shape[0] == 2 and batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()
