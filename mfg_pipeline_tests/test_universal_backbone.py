"""The universal sensor backbone: any channel count and window length, RevIN invariance,
balanced multi-corpus pretraining, persistence, and its Dagster asset."""

import json
import math

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import torch

from mfg_pipeline.assets.universal import SIMULATOR_KEY, UNIVERSAL_KEY, sampling_weights, universal_backbone_assets
from mfg_pipeline.cleaning.sensor import ChannelSpec, SensorCleaningRules
from mfg_pipeline.modalities.base import clone
from mfg_pipeline.modalities.sensor import window_trend
from mfg_pipeline.modalities.universal import (
    UniversalSensorBackbone,
    balanced_draw,
    corpus_crops,
    crop_starts,
    load_universal,
    pretrain_universal,
    to_crops,
)
from mfg_pipeline.profiles import Plant, Profile
from mfg_pipeline.resources import ComputeResource, DataStore
from mfg_pipeline.storage.artifacts import Corpus, save_corpus
from mfg_pipeline.training.seeding import generator

TINY = {"d_model": 32, "ff_dim": 64}


def windows(n: int, c: int, length: int, seed: int = 0, constant: tuple[int, ...] = ()) -> torch.Tensor:
    """Noisy sinusoids of random frequency and phase, each channel with its own units."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 6 * math.pi, length)
    freq = 0.5 + 2.5 * torch.rand(n, c, 1, generator=g)
    x = torch.sin(freq * t + 6 * torch.rand(n, c, 1, generator=g)) + 0.2 * torch.randn(n, c, length, generator=g)
    x = x * (1 + 50 * torch.rand(1, c, 1, generator=g)) + 300 * torch.rand(1, c, 1, generator=g)
    for ch in constant:
        x[:, ch] = 100.0
    return x


def corpus(x: torch.Tensor) -> Corpus:
    n = len(x)
    index = pd.DataFrame({"machine_id": [f"M{i % 4}" for i in range(n)], "window_id": np.arange(n)})
    return Corpus("sensor", x, index, {"channels": [f"ch{c}" for c in range(x.shape[1])], "window": x.shape[2]})


@pytest.fixture(scope="module")
def backbone() -> UniversalSensorBackbone:
    torch.manual_seed(0)
    return UniversalSensorBackbone(TINY).eval()


@pytest.mark.parametrize("shape", [(4, 8, 64), (4, 14, 30), (4, 1, 2048), (3, 2, 100)])
def test_any_channels_and_length_give_per_channel_features_invariant_to_gain_and_offset(backbone, shape):
    b, c, length = shape
    x = windows(b, c, length, seed=c)
    feats = backbone.embed(x)
    assert feats.shape == (b, backbone.feature_dim_for(c)) == (b, c * 32)
    assert torch.isfinite(feats).all()
    gain = torch.linspace(0.2, 200.0, c).view(1, c, 1)
    offset = torch.linspace(-1000.0, 1000.0, c).view(1, c, 1)
    assert torch.allclose(backbone.embed(x * gain + offset), feats, atol=2e-3)
    # per-channel features: permuting channels permutes feature blocks
    perm = torch.arange(c).flip(0)
    permuted = backbone.embed(x[:, perm]).reshape(b, c, -1)
    assert torch.allclose(permuted, feats.reshape(b, c, -1)[:, perm], atol=1e-5)


def test_long_windows_are_native_rate_crops_short_ones_resampled():
    assert crop_starts(2048, 64) == [64 * i for i in range(32)]  # non-overlapping, nothing dropped
    assert crop_starts(100, 64) == [0, 36]  # covers the newest samples too
    x = torch.arange(2048.0).view(1, 1, 2048)
    crops = to_crops(x, 64)
    assert crops.shape == (1, 1, 32, 64) and torch.equal(crops[0, 0, 1], torch.arange(64.0, 128.0))
    short = to_crops(torch.tensor([[[0.0, 1.0, 2.0]]]), 64)
    assert short.shape == (1, 1, 1, 64) and short[0, 0, 0, 0] == 0 and short[0, 0, 0, -1] == 2
    assert torch.allclose(short[0, 0, 0, 32], torch.tensor(2 * 32 / 63))  # linear


def test_prepare_accepts_any_shape_and_rejects_windows_without_shape(backbone):
    x = windows(3, 5, 30)
    x[0, 0, 0] = float("nan")
    prepared = backbone.prepare(corpus(x))
    assert prepared.shape == (3, 5, 30) and torch.isfinite(prepared).all()
    with pytest.raises(ValueError, match="shorter"):
        backbone.prepare(corpus(windows(3, 5, 1)))
    assert backbone.embed(torch.zeros(0, 5, 30)).shape == (0, 5 * 32)


def test_slower_scales_and_max_pooling_add_feature_blocks_and_see_a_transient(backbone):
    multi = UniversalSensorBackbone({**TINY, "scales": [1, 4], "max_pool": True}).eval()
    multi.load_state_dict(backbone.state_dict())
    x = windows(3, 2, 512, seed=4)
    feats = multi.embed(x).reshape(3, 2, 4, 32)  # per channel: (native mean, native max, 1/4 mean, 1/4 max)
    assert multi.feature_dim_for(2) == 2 * 4 * 32
    assert torch.allclose(feats[:, :, 0].reshape(3, -1), backbone.embed(x), atol=1e-5)  # the default features
    assert torch.allclose(feats[:, :, 2].reshape(3, -1),
                          backbone.embed(torch.nn.functional.avg_pool1d(x, 4, 4)), atol=1e-5)
    assert (feats[:, :, 1] >= feats[:, :, 0] - 1e-6).all()
    # a burst in one crop of eight barely moves the mean over crops and moves the max more
    burst = x.clone()
    burst[0, 0, 100:110] += 40 * x[0, 0].std()
    moved = (multi.embed(burst).reshape(3, 2, 4, 32) - feats)[0, 0].abs().mean(dim=-1)
    assert moved[1] > 1.5 * moved[0]
    with pytest.raises(ValueError, match="shorter"):
        multi.prepare(corpus(windows(2, 1, 20)))  # 1/4 of 20 samples is below min_length
    with pytest.raises(ValueError, match="scales"):
        UniversalSensorBackbone({**TINY, "scales": [0]})


def test_balanced_draw_gives_every_source_an_equal_share():
    source, row = balanced_draw([100_000, 10], 4000, generator(0))
    share = torch.bincount(source, minlength=2).float() / 4000
    assert torch.allclose(share, torch.tensor([0.5, 0.5]), atol=0.04)
    assert row[source == 1].max() <= 9 and row[source == 0].max() > 10_000


def test_weighted_draw_and_family_balance():
    source, _ = balanced_draw([50, 50, 50], 6000, generator(1), weights=[0.25, 0.25, 0.5])
    share = torch.bincount(source, minlength=3).float() / 6000
    assert torch.allclose(share, torch.tensor([0.25, 0.25, 0.5]), atol=0.03)
    weights = sampling_weights(["cmapss_fd001", "cmapss_fd002", "cmapss_fd003", "cmapss_fd004", "cwru", "simulator"],
                               "family")
    assert weights == {**{f"cmapss_fd00{i}": 0.25 for i in range(1, 5)}, "cwru": 1.0, "simulator": 1.0}
    assert set(sampling_weights(["cmapss_fd001", "cwru"], "source").values()) == {1.0}
    with pytest.raises(ValueError, match="balance"):
        sampling_weights(["cwru"], "rows")


def test_corpus_crops_drop_constant_channels_and_cap_the_count():
    crops, info = corpus_crops(corpus(windows(20, 6, 30, constant=(0, 1))), 64, max_crops=1000)
    assert info["channels_used"] == 4 and info["crops"] == 20 * 4 and info["resampled"]
    assert crops.shape == (80, 64) and (crops.std(dim=1) > 0).all()
    crops, info = corpus_crops(corpus(windows(10, 1, 2048)), 64, max_crops=50, seed=3)
    assert crops.shape == (50, 64) and info["crops_per_window_channel"] == 32
    again, _ = corpus_crops(corpus(windows(10, 1, 2048)), 64, max_crops=50, seed=3)
    assert torch.equal(crops, again)


def test_pretraining_on_two_corpora_reduces_the_loss_and_uses_both():
    corpora = {"eight_channels": corpus(windows(64, 8, 64, seed=1, constant=(7,))),
               "vibration": corpus(windows(6, 1, 1024, seed=2))}
    bb, result = pretrain_universal(corpora, steps=40, batch_size=64, lr=3e-3, seed=0, model_overrides=TINY)
    h = result.history
    assert len(h) == 40 and sum(h[-10:]) / 10 < 0.85 * sum(h[:10]) / 10, h
    sources = bb.config["sources"]
    assert set(sources) == {"eight_channels", "vibration"}
    assert sources["eight_channels"]["crops"] == 64 * 7 and sources["eight_channels"]["channels_used"] == 7
    assert sources["vibration"]["crops"] == 6 * 16
    assert sources["vibration"]["weight"] == sources["eight_channels"]["weight"] == 0.5
    assert not bb.training and bb.embed(windows(2, 24, 30)).shape == (2, 24 * 32)


def test_save_load_round_trip_identical_embeddings(tmp_path):
    bb, _ = pretrain_universal({"a": corpus(windows(16, 3, 64))}, steps=2, batch_size=16, model_overrides=TINY)
    x = windows(5, 3, 200, seed=9)
    before = bb.embed(x)
    bb.save(tmp_path / "bb")
    meta = json.loads((tmp_path / "bb" / "config.json").read_text())
    assert meta["modality"] == "universal_sensor" and meta["config"]["sources"]["a"]["crops"] == 16 * 3
    assert list((tmp_path / "bb").glob("*.safetensors")) and not list((tmp_path / "bb").glob("*.pt"))
    loaded = load_universal(tmp_path / "bb")
    assert torch.equal(loaded.embed(x), before)
    assert torch.equal(clone(loaded).embed(x), before)
    twin = loaded.fresh(seed=1)
    assert twin.num_parameters() == loaded.num_parameters() and not torch.equal(twin.embed(x), before)
    # parameter-free window statistics can be switched on for one task at load time
    with_stats = load_universal(tmp_path / "bb", stats_features=True)
    feats = with_stats.embed(x).reshape(5, 3, -1)
    assert feats.shape[-1] == 35 and torch.equal(feats[..., :32], before.reshape(5, 3, -1))
    assert torch.allclose(feats[..., 32], x.mean(dim=-1), rtol=1e-4)
    assert torch.allclose(feats[..., 34], window_trend(x), rtol=1e-4)
    # ... and the embeddings averaged over the channels, the statistics still per channel
    mean = load_universal(tmp_path / "bb", stats_features=True, channel_mean=True)
    pooled = mean.embed(x)
    assert pooled.shape == (5, 32 + 3 * 3) == (5, mean.feature_dim_for(3))
    assert torch.allclose(pooled[:, :32], before.reshape(5, 3, -1).mean(dim=1), atol=1e-5)
    assert torch.equal(pooled[:, 32:], feats[..., 32:].reshape(5, -1))
    with pytest.raises(ValueError, match="overridden"):
        load_universal(tmp_path / "bb", d_model=64)
    assert load_universal(tmp_path / "bb", scales=[1, 2], max_pool=True).embed(x).shape == (5, 3 * 4 * 32)


@pytest.mark.parametrize("n_fit", [30, 60])  # fewer / more fitted rows than the 32 embedding dimensions
def test_leading_embedding_components_are_fitted_on_the_given_rows_only(backbone, n_fit):
    mean = UniversalSensorBackbone({**TINY, "stats_features": True, "channel_mean": True}).eval()
    feats = torch.stack([mean.embed(windows(80, 3, 64, seed=4))])  # [1 copy, 80, 32 + 3 x 3]
    fit_rows = np.arange(n_fit)
    out = mean.leading_embedding_components(feats, fit_rows, 4)
    assert out.shape == (1, 80, 4 + 9)
    assert torch.equal(out[..., 4:], feats[..., 32:])  # the statistics pass through
    fitted = out[0, :n_fit, :4].double()
    assert torch.allclose(fitted.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-4)
    var = fitted.var(0)
    assert (var[:-1] >= var[1:]).all()  # leading directions first
    moved = feats.clone()
    moved[0, n_fit:, :32] += 100.0  # rows outside the fit change only their own projection
    again = mean.leading_embedding_components(moved, fit_rows, 4)
    assert torch.allclose(again[0, :n_fit], out[0, :n_fit]) and not torch.allclose(again[0, n_fit:], out[0, n_fit:])
    with pytest.raises(ValueError, match="channel_mean"):
        backbone.leading_embedding_components(feats, fit_rows, 4)


def _profile(tmp_path) -> Profile:
    rules = SensorCleaningRules((ChannelSpec("a", -1e4, 1e4), ChannelSpec("b", -1e4, 1e4), ChannelSpec("c", -1e4, 1e4)))
    plants = (
        Plant(name="engines", modalities=("sensor",), sensor=rules, window=30),
        Plant(name="bearings", modalities=("sensor",), sensor=SensorCleaningRules((ChannelSpec("de", -50, 50),)),
              window=512),
        Plant(name="process", modalities=("sensor",), sensor=rules, window=1),  # no shape: not a source
        Plant(name="images", modalities=("image",)),
    )
    root = tmp_path / "data"
    return Profile("test", root / "raw", root / "work", root / "reports", "2026-01-01", plants)


def test_asset_materializes_from_the_corpora_that_exist(tmp_path):
    profile = _profile(tmp_path)
    save_corpus(profile.work_dir / "engines" / "sensor_corpus", corpus(windows(40, 3, 30, seed=4, constant=(2,))))
    save_corpus(profile.work_dir / "bearings" / "sensor_corpus", corpus(windows(8, 1, 512, seed=5)))
    simulator_dir = tmp_path / "elsewhere" / "work" / "sensor_corpus"  # never materialized
    (asset,) = universal_backbone_assets(profile, simulator_dir)
    assert asset.key == UNIVERSAL_KEY and asset.group_names_by_key[UNIVERSAL_KEY] == "pretraining"
    deps = {k.to_user_string() for k in asset.asset_deps[UNIVERSAL_KEY]}
    assert deps == {"engines/sensor_corpus", "bearings/sensor_corpus", SIMULATOR_KEY.to_user_string()}

    resources = {"store": DataStore(landing_dir=str(profile.landing_dir), work_dir=str(profile.work_dir),
                                    reports_dir=str(profile.reports_dir)),
                 "compute": ComputeResource(device="cpu")}
    run_config = {"ops": {"universal_sensor_backbone": {"config": {"steps": 6, "batch_size": 32, "checkpoint_every": 3}}}}
    result = dg.materialize([asset], resources=resources, run_config=run_config)
    assert result.success
    meta = result.asset_materializations_for_node("universal_sensor_backbone")[0].metadata
    assert meta["crops_per_source"].value == {"engines": 40 * 2, "bearings": 8 * 8}
    assert meta["missing_sources"].value == ["simulator"]
    assert meta["sampling_weights"].value == {"engines": 0.5, "bearings": 0.5}
    assert meta["n_sources"].value == 2 and meta["steps"].value == 6
    out = profile.work_dir / "universal_sensor_backbone"
    assert not (out / "checkpoints").exists()
    bb = load_universal(out)
    assert set(bb.config["sources"]) == {"engines", "bearings"}
    assert bb.embed(windows(2, 3, 30)).shape == (2, bb.feature_dim_for(3))


def test_asset_fails_clearly_without_any_corpus(tmp_path):
    profile = _profile(tmp_path)
    (asset,) = universal_backbone_assets(profile, None)
    resources = {"store": DataStore(landing_dir=str(profile.landing_dir), work_dir=str(profile.work_dir),
                                    reports_dir=str(profile.reports_dir)),
                 "compute": ComputeResource(device="cpu")}
    result = dg.materialize([asset], resources=resources, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "none of its sensor corpora" in str(failure.step_failure_data.error.message)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
