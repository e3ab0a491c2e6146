"""The tabular modality: row encoder, masked-feature pretraining, one-reading baselines."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mfg_pipeline.modalities import get_modality
from mfg_pipeline.modalities.base import pretrain
from mfg_pipeline.modalities.tabular import BIN_TAIL, TabularBackbone, quantile_bin_edges
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset
from mfg_pipeline.tasks.baselines import Baseline, hand_features, sensor_features
from mfg_pipeline.tasks.heads import HeadSettings, train_head

SMALL = {"hidden": 64, "n_layers": 2}
OFFSET = torch.tensor([300.0, 310.0, 1500.0, 40.0, 100.0])
SCALE = torch.tensor([2.0, 1.5, 180.0, 10.0, 60.0])


def table(n: int, seed: int) -> torch.Tensor:
    """Raw rows [n, 5]: a, b, e independent N(0, 1); c = (a + b) / sqrt(2) and d = (a - b) / sqrt(2)
    up to a little noise; then an offset and scale per column (physical-looking units)."""
    g = torch.Generator().manual_seed(seed)
    a, b, e = torch.randn(3, n, generator=g)
    noise = 0.05 * torch.randn(2, n, generator=g)
    z = torch.stack([a, b, (a + b) / 2 ** 0.5 + noise[0], (a - b) / 2 ** 0.5 + noise[1], e], dim=1)
    return z * SCALE + OFFSET


def corpus_of(x: torch.Tensor) -> Corpus:
    return Corpus("sensor", x[:, :, None], pd.DataFrame({"machine_id": ["m"] * len(x)}),
                  {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "window": 1})


@pytest.fixture(scope="module")
def pretrained():
    corpus = corpus_of(table(2048, seed=0))
    backbone = TabularBackbone.build(SMALL, corpus, seed=0)
    result = pretrain(backbone, corpus, steps=300, batch_size=128, lr=3e-3, warmup_steps=10, seed=0)
    return backbone.eval(), result


def test_registry_entry_pretrains_on_the_sensor_corpus():
    spec = get_modality("tabular")
    assert spec.backbone_cls is TabularBackbone
    assert spec.corpus_asset == "sensor_corpus" and spec.backbone_asset == "tabular_backbone"


def test_features_are_encoding_standardised_readings_and_passthrough_columns():
    x = table(64, seed=1)
    bb = TabularBackbone.build(SMALL, corpus_of(x), seed=0)
    assert bb.config["n_features"] == 5 and bb.config["feature_mean"] == pytest.approx(x.mean(0).tolist())
    inputs = bb.prepare(corpus_of(x))
    assert inputs.shape == (64, 5) and inputs.dtype == torch.float32
    feats = bb.embed(inputs)
    assert feats.shape == (64, bb.feature_dim) and bb.feature_dim == 64 + 5
    z = (x - x.mean(0)) / x.std(0)
    assert torch.allclose(feats[:, 64:], z, atol=1e-4)

    # a labeled table with 3 more columns (one-hot product type): passed through unchanged
    onehot = torch.nn.functional.one_hot(torch.arange(64) % 3, 3).float()
    wide = torch.cat([x, onehot], 1)
    data = LabeledDataset("t", "tabular", wide[:, :, None], pd.DataFrame({"target": [0] * 64}))
    wide_feats = bb.embed(bb.prepare(data))
    assert wide_feats.shape == (64, bb.feature_dim + 3)
    assert torch.equal(wide_feats[:, -3:], onehot)
    assert torch.allclose(wide_feats[:, :bb.feature_dim], feats, atol=1e-5)  # extra columns do not enter the encoder
    # [N, F] works too; NaN becomes a number; a real window or too few columns is refused
    with_nan = wide.clone()
    with_nan[0, 1] = float("nan")
    assert torch.isfinite(bb.prepare(LabeledDataset("t", "tabular", with_nan, data.index))).all()
    with pytest.raises(ValueError, match="one reading per row"):
        bb.prepare(Corpus("sensor", torch.zeros(4, 5, 8), pd.DataFrame(index=range(4))))
    with pytest.raises(ValueError, match="columns"):
        bb.prepare(LabeledDataset("t", "tabular", x[:, :3], data.index))


def test_readings_are_also_encoded_piecewise_linearly_over_corpus_quantile_bins(tmp_path):
    x = table(4000, seed=2)
    onehot = torch.nn.functional.one_hot(torch.arange(4000) % 3, 3).float()
    z = (x - x.mean(0)) / x.std(0)
    edges = quantile_bin_edges(torch.cat([z, onehot], 1), 8)
    assert [len(e) for e in edges] == [9] * 5 + [0] * 3  # a one-hot column is not binned
    e = torch.tensor(edges[0], dtype=torch.float64)
    assert (e.diff() > 0).all()
    # the outer edges at the BIN_TAIL quantiles; the bins narrow towards the tails
    assert float((z[:, 0] < e[0]).double().mean()) == pytest.approx(BIN_TAIL, abs=1e-3)
    assert e.diff()[0] < e.diff()[4] and e.diff()[-1] < e.diff()[3]

    wide = torch.cat([x, onehot], 1)
    bb = TabularBackbone.build({**SMALL, "bins": 8}, corpus_of(wide), seed=0)
    assert bb.binned == [0, 1, 2, 3, 4] and bb.inp.in_features == 8 + 36 + 5 * 8  # readings, products, bins
    parts = []
    bb.inp.register_forward_hook(lambda module, args, out: parts.append(args[0]))
    row = bb.standardise(wide[:1]).clone()
    mid = (e[2] + e[3]) / 2  # halfway through the third bin of reading 0
    row[0, 0] = float(mid)
    bb.encode(row)
    assert parts[0][0, -40:-32].tolist() == pytest.approx([1, 1, 0.5, 0, 0, 0, 0, 0], abs=1e-5)
    bb.save(tmp_path / "bb")  # the edges travel in the config: a loaded backbone encodes the same
    loaded = get_modality("tabular").load(tmp_path / "bb")
    inputs = bb.prepare(corpus_of(wide[:50]))
    assert torch.equal(loaded.embed(inputs), bb.embed(inputs))


def test_corruption_replaces_exactly_the_mask_count_with_values_of_the_batch():
    bb = TabularBackbone.build({**SMALL, "mask_ratio": 0.4}, corpus_of(table(64, seed=2)), seed=0)
    z = bb.standardise(table(256, seed=3))
    corrupted, mask = bb.corrupt(z, torch.Generator().manual_seed(0))
    assert mask.sum(1).eq(2).all()  # round(0.4 * 5) per row
    assert torch.equal(corrupted[~mask], z[~mask])
    for j in range(5):  # each replacement is a value of the same column in the batch
        assert torch.isin(corrupted[mask[:, j], j], z[:, j]).all()
    again, mask2 = bb.corrupt(z, torch.Generator().manual_seed(0))
    assert torch.equal(again, corrupted) and torch.equal(mask2, mask)


def test_ssl_loss_decreases(pretrained):
    _, result = pretrained
    h = result.history
    first, last = np.mean(h[:30]), np.mean(h[-30:])
    assert last < 0.85 * first, (first, last)


def test_masked_reconstruction_beats_the_mean_on_held_out_rows(pretrained):
    bb, _ = pretrained
    z = bb.standardise(table(2000, seed=7))
    with torch.no_grad():
        corrupted, mask = bb.corrupt(z, torch.Generator().manual_seed(1))
        recon = bb.recon(bb.encode(corrupted))
        mask_logits = bb.mask_head(bb.encode(corrupted))
    err = (recon - z).pow(2)
    dependent = mask.clone()
    dependent[:, [0, 1, 4]] = False  # c and d are functions of a and b
    model_mse = float(err[dependent].mean())
    mean_mse = float(z[dependent].pow(2).mean())  # predicting the corpus mean (0 once standardised)
    assert model_mse < 0.5 * mean_mse, (model_mse, mean_mse)
    # the independent column e cannot be reconstructed: it does no better than the mean
    independent = mask[:, 4]
    assert float(err[independent, 4].mean()) > 0.7 * float(z[independent, 4].pow(2).mean())
    # which readings were replaced is detectable, better than "none" (60% right: 2 of 5 are)
    accuracy = float(((mask_logits > 0) == mask).float().mean())
    assert accuracy > 0.65, accuracy


def test_save_load_round_trip_and_scratch_twin(pretrained, tmp_path):
    bb, _ = pretrained
    x = torch.cat([table(32, seed=9), torch.ones(32, 3)], 1)[:, :, None]
    inputs = bb.prepare(LabeledDataset("t", "sensor", x, pd.DataFrame({"target": [0] * 32})))
    before = bb.embed(inputs)
    bb.save(tmp_path / "bb")
    meta = json.loads((tmp_path / "bb" / "config.json").read_text())
    assert meta["modality"] == "tabular" and len(meta["config"]["feature_std"]) == 5
    assert sorted(p.name for p in (tmp_path / "bb").iterdir()) == ["config.json", "model.safetensors"]
    loaded = get_modality("tabular").load(tmp_path / "bb")
    assert torch.equal(loaded.embed(loaded.prepare(LabeledDataset("t", "sensor", x, pd.DataFrame()))), before)

    twin = bb.fresh(seed=1)
    assert [(k, v.shape) for k, v in twin.state_dict().items()] == [(k, v.shape) for k, v in bb.state_dict().items()]
    assert not torch.equal(twin.inp.weight, bb.inp.weight)
    assert twin.embed(inputs).shape == before.shape and not torch.equal(twin.embed(inputs), before)
    assert torch.equal(bb.fresh(seed=1).inp.weight, twin.inp.weight)  # deterministic per seed


def test_scratch_twin_learns_its_standardisation_and_bins_from_the_labeled_rows_alone():
    corpus = corpus_of(table(2000, seed=0))
    bb = TabularBackbone.build({**SMALL, "bins": 8}, corpus, seed=0)
    # the labeled rows: a corner of the corpus (column 0 high), with a passthrough variant column
    x = table(4000, seed=5)
    x = x[x[:, 0] > OFFSET[0] + SCALE[0]][:300]
    data = LabeledDataset("t", "sensor", torch.cat([x, torch.ones(len(x), 1)], 1)[:, :, None],
                          pd.DataFrame({"target": [0] * len(x)}))
    labeled = np.arange(0, len(x), 2)
    twin = bb.scratch_twin(3, data, labeled)
    own = TabularBackbone.build({**SMALL, "bins": 8}, corpus_of(x[labeled]), seed=3)
    assert twin.config["n_features"] == 5  # the variant column still passes through
    assert twin.config["feature_mean"] == pytest.approx(x[labeled].mean(0).tolist())
    np.testing.assert_allclose(np.array(twin.config["bin_edges"]), np.array(own.config["bin_edges"]), rtol=1e-5)
    assert twin.config["feature_mean"][0] > bb.config["feature_mean"][0] + 0.5 * SCALE[0]  # not the corpus's
    assert torch.equal(twin.inp.weight, own.inp.weight)  # the seed's weights, as any twin
    assert twin.embed(twin.prepare(data)).shape == bb.embed(bb.prepare(data)).shape


def test_full_finetune_uses_the_passthrough_columns(pretrained):
    """The label is the product type (a passthrough column): a full finetune learns it."""
    bb, _ = pretrained
    x = table(400, seed=11)
    kind = torch.arange(400) % 3
    inputs = torch.cat([x, torch.nn.functional.one_hot(kind, 3).float()], 1)
    y = (kind == 2).numpy().astype(np.int64)
    settings = HeadSettings(kind="classification", n_outputs=2, mode="full", steps=60, batch_size=64, lr=1e-2,
                            body_lr_scale=0.1)
    predictor = train_head(bb, inputs[:300], y[:300], settings)
    accuracy = float((predictor.predict(inputs[300:]).argmax(1) == y[300:]).mean())
    assert accuracy >= 0.95, accuracy
    assert not torch.equal(bb.inp.weight, predictor.model.backbone.inp.weight)  # a copy trained, not bb


@pytest.mark.parametrize("modality", ["sensor", "tabular"])
def test_hand_features_of_one_reading_rows_are_the_raw_values(modality):
    x = torch.cat([table(60, seed=4), torch.nn.functional.one_hot(torch.arange(60) % 3, 3).float()], 1)
    y = (x[:, 3] > 40).long().numpy()
    data = LabeledDataset("t", modality, x[:, :, None], pd.DataFrame({"target": y}))
    feats = hand_features(data)
    assert feats.shape == (60, 8) and np.array_equal(feats, x.double().numpy())
    assert np.array_equal(hand_features(LabeledDataset("t", modality, x, data.index)), feats)
    base = Baseline(modality, "classification", "gbm", 2, seed=0).fit(feats[:40], y[:40])
    assert base.predict_scores(feats[40:]).shape == (20, 2)
    # real windows keep the window statistics
    windows = torch.randn(6, 2, 16)
    stats = hand_features(LabeledDataset("t", "sensor", windows, pd.DataFrame({"target": [0] * 6})))
    assert np.allclose(stats, sensor_features(windows.numpy()))


def test_sensor_features_resolve_more_bands_in_longer_windows():
    assert sensor_features(np.random.default_rng(0).normal(size=(3, 2, 64))).shape == (3, 2 * (7 + 6))
    t = np.arange(2048)
    tones = np.stack([np.sin(2 * np.pi * k * t / 2048) for k in (100, 130)])[:, None]  # [2, 1, 2048]
    feats = sensor_features(tones)
    assert feats.shape == (2, 7 + 32)
    # 32 bands of 32 bins: the two tones fall in bands 3 and 4, which 6 bands would merge
    assert feats[0, 7:].argmax() == 3 and feats[1, 7:].argmax() == 4
    assert sensor_features(tones, bands=6)[:, 7:].argmax(1).tolist() == [0, 0]


def test_split_points_add_one_step_per_point_to_the_features_and_survive_save_and_load(tmp_path):
    backbone = TabularBackbone.build(SMALL, corpus_of(table(256, seed=1)), seed=0)
    x = table(64, seed=5)
    points = [[300.0], [], [], [35.0, 45.0], []]
    stepped = backbone.with_split_points(points)
    plain, features = backbone.embed(x), stepped.embed(x)
    assert features.shape == (64, plain.shape[1] + 3) and stepped.feature_dim == backbone.feature_dim + 3
    torch.testing.assert_close(features[:, :-3], plain)  # the same weights
    expected = torch.stack([x[:, 0] > 300, x[:, 3] > 35, x[:, 3] > 45], dim=1).float()
    torch.testing.assert_close(features[:, -3:], expected)
    stepped.save(tmp_path / "b")
    loaded = TabularBackbone.load(tmp_path / "b")
    assert loaded.config["split_points"] == points
    torch.testing.assert_close(loaded.embed(x), features)
