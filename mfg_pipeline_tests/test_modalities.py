import json

import pytest
import torch

from mfg_pipeline.modalities import MODALITIES, get_modality
from mfg_pipeline.modalities.base import clone
from mfg_pipeline.modalities.sensor import window_trend
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


def test_registry_has_the_modalities_and_their_corpora():
    assert set(MODALITIES) >= {"sensor", "image", "text", "tabular"}
    for name, spec in MODALITIES.items():
        assert spec.name == name and spec.backbone_asset == f"{name}_backbone"
        assert spec.corpus_asset == f"{spec.corpus_modality or name}_corpus"
    assert MODALITIES["tabular"].corpus_asset == "sensor_corpus"  # process rows are sensor readings


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


def test_window_trend_is_the_change_across_the_window_whatever_the_sampling_rate():
    for n in (10, 100):  # the same drift from 2 to 5, sampled at 10x the rate
        assert torch.allclose(window_trend(torch.linspace(2.0, 5.0, n)[None, None]), torch.tensor([[3.0]]), atol=1e-5)
    noise = torch.randn(4, 3, 50, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(window_trend(noise + 7.0), window_trend(noise), atol=1e-5)  # level does not move it
    assert torch.equal(window_trend(torch.ones(2, 1, 1)), torch.zeros(2, 1))


def test_sensor_trend_feature_adds_each_channels_drift_in_channel_stds():
    spec = get_modality("sensor")
    corpus = S.sensor_corpus(32)
    kw = dict(d_model=16, ff_dim=32, channel_mixing=True)
    plain, with_trend = spec.build(corpus, **kw), spec.build(corpus, trend_feature=True, **kw)
    x = S.sensor_dataset("failure_dataset", 8).inputs
    c = x.shape[1]
    feats = with_trend.embed(x)
    assert with_trend.feature_dim == plain.feature_dim + c == feats.shape[1]
    trend = feats[:, -3 * c:].reshape(len(x), c, 3)[..., 2]  # [level, scale, trend] per channel
    assert torch.allclose(trend, window_trend(x) / with_trend.chan_std, rtol=1e-4, atol=1e-5)


def test_sensor_spectrum_front_end_tokens_follow_frequency_and_ignore_gain():
    spec = get_modality("sensor")
    corpus = S.sensor_corpus(32)
    window = corpus.inputs.shape[-1]
    bb = spec.build(corpus, stats_features=False, d_model=16, ff_dim=32, spectrum=True, pool="tokens",
                    patch_len=8, stride=8)
    n_tokens = (window // 2 - 8) // 8 + 1
    assert bb.n_patches == n_tokens and bb.feature_dim == bb.config["channels"] * n_tokens * 16
    t = torch.arange(window, dtype=torch.float32)
    tone = lambda cycles: torch.sin(2 * torch.pi * cycles * t / window) + 0.3 * torch.sin(2 * torch.pi * 3 * cycles * t / window)
    x = torch.stack([tone(5), tone(5) * 4.0 + 2.0, tone(7)])[:, None].expand(-1, bb.config["channels"], -1)
    f = bb.embed(x.contiguous())
    assert f.shape == (3, bb.feature_dim)
    # gain and offset leave the (standardised) spectrum as it was; other frequencies do not
    assert torch.allclose(f[0], f[1], atol=1e-3)
    assert not torch.allclose(f[0], f[2], atol=1e-1)
    with pytest.raises(ValueError, match="pool"):
        spec.build(corpus, pool="max")


def test_sensor_feature_depth_selects_the_encoder_layers_the_features_pass_through():
    spec = get_modality("sensor")
    corpus = S.sensor_corpus(32)
    kw = dict(stats_features=False, d_model=16, ff_dim=32, pool="tokens", n_layers=2)
    full = spec.build(corpus, **kw)
    x = S.sensor_dataset("failure_dataset", 4).inputs
    patches, _, _ = full._patches(x.float())
    embeddings = full.patch_embed(patches).reshape(len(x), -1)
    depth0 = spec.build(corpus, feature_depth=0, **kw)
    depth0.load_state_dict(full.state_dict())
    depth1 = spec.build(corpus, feature_depth=1, **kw)
    depth1.load_state_dict(full.state_dict())
    last = spec.build(corpus, feature_depth=2, **kw)
    last.load_state_dict(full.state_dict())
    f0, f1, f2 = depth0.embed(x), depth1.embed(x), last.embed(x)
    assert torch.allclose(f0, embeddings, atol=1e-5)  # depth 0: the patch embeddings alone
    assert torch.allclose(f2, full.embed(x), atol=1e-5)  # depth n_layers: the whole encoder
    assert f1.shape == f0.shape and not torch.allclose(f1, f0, atol=1e-2) and not torch.allclose(f1, f2, atol=1e-2)
    with pytest.raises(ValueError, match="feature_depth"):
        spec.build(corpus, feature_depth=3, n_layers=2)


def test_text_tokenizer_is_trained_on_the_corpus():
    bb = get_modality("text").build(S.text_corpus(120), **TINY["text"])
    vocab = bb.tokenizer.get_vocab()
    assert "[MASK]" in vocab and "leak" in vocab
    ids = bb.tokenize(["hydraulic hose leak"])["input_ids"][0].tolist()
    assert bb.tokenizer.token_to_id("[UNK]") not in ids
    batch = bb.tokenize(["replaced hydraulic hose", "checked"])
    assert batch["input_ids"].shape[0] == 2 and batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()


def test_image_features_pool_every_stage_and_ignore_lighting():
    bb = get_modality("image").build(S.image_corpus(8), view_size=32)
    # shufflenet_v2_x0_5 stages 48 + 96 + 192 channels and conv5 1024
    assert bb.feature_dim == 48 + 96 + 192 + 1024
    x = S.defect_dataset(6).inputs.float()
    a = bb.embed(x.round().to(torch.uint8))
    darker = (x * 0.6 + 20).round().to(torch.uint8)  # gain + offset: per-image standardisation removes it
    assert a.shape == (6, bb.feature_dim)
    cos = torch.nn.functional.cosine_similarity(a, bb.embed(darker), dim=1)
    assert bool((cos > 0.97).all()), cos
    plain = get_modality("image").build(S.image_corpus(8), view_size=32, multi_scale=False, standardize="fixed")
    assert plain.feature_dim == 1024


def test_text_features_pool_every_layer_and_whole_words_are_masked_together():
    bb = get_modality("text").build(S.text_corpus(120), **TINY["text"])
    assert bb.feature_dim == 32 * (bb.mlm.config.num_hidden_layers + 1)
    inputs = bb.tokenize(["replaced hydraulic hose", "checked"])
    assert bb.embed(inputs).shape == (2, bb.feature_dim)
    # a word split into pieces is masked as a whole
    vocab = bb.tokenizer.get_vocab()
    cont = [t for t in vocab if t.startswith("##")]
    assert cont, "the tiny vocabulary has continuation pieces"
    head = next(t for t in vocab if not t.startswith("##") and t not in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
    ids = torch.tensor([[vocab["[CLS]"], vocab[head], vocab[cont[0]], vocab[cont[1]], vocab[head], vocab["[SEP]"]]] * 64)
    mask = torch.ones_like(ids)
    captured = {}
    original = bb.mlm.forward

    def spy(input_ids=None, attention_mask=None, labels=None):
        captured["labels"] = labels
        return original(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

    bb.mlm.forward = spy
    bb.ssl_loss({"input_ids": ids, "attention_mask": mask}, torch.Generator().manual_seed(0))
    chosen = captured["labels"] != -100
    assert torch.equal(chosen[:, 1], chosen[:, 2]) and torch.equal(chosen[:, 1], chosen[:, 3])
    assert chosen[:, 1].any() and not chosen[:, 0].any() and not chosen[:, 5].any()


def test_text_tokenizer_vocabulary_is_the_same_in_every_process():
    """The vocabulary (tokens and ids) depends on the corpus only, not on the process: the
    trainers of ``tokenizers`` break ties in hash-map order, which made text metrics vary."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = ("import json; from mfg_pipeline.modalities.text import train_tokenizer; "
              "from mfg_pipeline_tests.synthetic import text_corpus; "
              "print(json.dumps(sorted(train_tokenizer(text_corpus(200).texts, 300).get_vocab().items(), key=lambda kv: kv[1])))")
    repo = Path(__file__).resolve().parents[1]
    vocabs = [json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                        cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}).stdout)
              for _ in range(2)]
    assert vocabs[0] == vocabs[1]
    tokens = [t for t, _ in vocabs[0]]
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(tokens) > 50
    assert any(t.startswith("##") for t in tokens) and any(len(t) > 3 and not t.startswith("#") for t in tokens)


DICTIONARY = {"arch": "patch_dictionary", "patch": 5, "atoms": 12, "scales": [1, 2]}


def test_patch_dictionary_responses_are_whitened_normalised_patches_dot_atoms():
    bb = get_modality("image").build(S.image_corpus(16), **DICTIONARY)
    enc = bb.encoder
    x = bb._to_float(bb.prepare(S.defect_dataset(2)))[:1]
    responses = enc._responses(x, 0)
    patch = x[0, 0, 3:8, 10:15].reshape(-1).double()
    z = (patch - patch.mean()) / (patch.var() + 0.01).sqrt()
    direct = (z.float() @ enc.whiten0) @ torch.nn.functional.normalize(enc.atoms[0], dim=1).T
    assert torch.allclose(responses[0, :, 3, 10], direct, atol=1e-4)
    # a brightness offset changes no normalised patch
    assert torch.allclose(enc(x), enc(x + 0.1), atol=1e-4)
    # a stride reads every stride-th patch position of the same responses
    strided = get_modality("image").backbone_cls({**DICTIONARY, "strides": [2, 1]}).encoder
    strided.load_state_dict(enc.state_dict())
    assert torch.allclose(strided._responses(x, 0), responses[..., ::2, ::2], atol=1e-5)
    # no strides given: one per scale, whatever the number of scales
    assert get_modality("image").backbone_cls({**DICTIONARY, "scales": [1, 2, 4]}).encoder.strides == (1, 1, 1)
    assert bb.feature_dim == 2 * 6 * 12 and bool((bb.embed(bb.prepare(S.defect_dataset(3))) >= 0).all())


def test_patch_dictionary_vlad_sums_each_atoms_residuals_of_the_whitened_patches():
    spec = get_modality("image")
    bb = spec.build(S.image_corpus(16), **DICTIONARY, encoding="vlad")
    enc = bb.encoder
    x = bb._to_float(bb.prepare(S.defect_dataset(2)))[:1]
    # by hand, scale 1 (every position): unit whitened patches, nearest atom, residual sums,
    # signed square roots, each atom's sum and then the whole block at unit norm
    patches = torch.stack([x[0, 0, r:r + 5, c:c + 5].reshape(-1) for r in range(x.shape[-2] - 4)
                           for c in range(x.shape[-1] - 4)]).double()
    z = (patches - patches.mean(1, keepdim=True)) / (patches.var(1, keepdim=True) + 0.01).sqrt()
    z = torch.nn.functional.normalize(z @ enc.whiten0.double(), dim=1)
    atoms = torch.nn.functional.normalize(enc.atoms[0].detach().double(), dim=1)
    nearest = (z @ atoms.T).argmax(1)
    sums = torch.stack([(z[nearest == k] - atoms[k]).sum(0) for k in range(len(atoms))])
    sums = torch.nn.functional.normalize(sums.sign() * sums.abs().sqrt(), dim=1)
    direct = torch.nn.functional.normalize(sums.reshape(-1), dim=0)
    assert torch.allclose(enc._vlad(x, 0)[0].double(), direct, atol=1e-4)
    feats = bb.embed(bb.prepare(S.defect_dataset(3)))
    assert bb.feature_dim == 2 * 12 * 25 == feats.shape[1]
    assert torch.allclose(feats.reshape(3, 2, -1).norm(dim=-1), torch.ones(3, 2), atol=1e-5)  # a unit block per scale
    assert torch.allclose(enc(x), enc(x + 0.1), atol=1e-4)  # a brightness offset changes no normalised patch
    # the scratch twin trains its atoms through the residuals, with finite gradients even for an
    # atom that no patch is nearest to
    twin = bb.fresh(seed=1)
    with torch.no_grad():
        twin.encoder.atoms[0][0] = torch.ones(25)  # flat: orthogonal to every zero-mean patch
    images = bb.prepare(S.defect_dataset(4)).float() / 255
    unit = torch.nn.functional.normalize(twin.encoder.atoms[0].detach(), dim=1)
    patches = torch.nn.functional.unfold(images, 5).transpose(1, 2)
    assert not ((patches - patches.mean(-1, keepdim=True)) @ unit.T).argmax(-1).eq(0).any()
    twin(images).sum().backward()
    grads = [a.grad for a in twin.encoder.atoms]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    with pytest.raises(ValueError, match="encoding"):
        spec.backbone_cls({**DICTIONARY, "encoding": "fisher"})


def test_patch_dictionary_fits_the_corpus_better_than_random_atoms_and_round_trips(tmp_path):
    spec = get_modality("image")
    corpus = S.image_corpus(16)
    bb, result = spec.pretrain(corpus, steps=3, batch_size=8, lr=1e-3, model_overrides=DICTIONARY)
    assert result.steps_done == 3 and all(0 <= h <= 2 for h in result.history)
    x = bb._to_float(bb.prepare(corpus))
    random_atoms = clone(bb)
    with torch.no_grad():
        for atoms in random_atoms.encoder.atoms:
            atoms.copy_(torch.randn_like(atoms))
        learnt = float(bb.encoder.objective(x, torch.Generator().manual_seed(0)))
        assert learnt < float(random_atoms.encoder.objective(x, torch.Generator().manual_seed(0))) - 0.02
    whiten = bb.encoder.whiten0
    assert torch.allclose(whiten, whiten.T, atol=1e-5) and not torch.allclose(whiten, torch.eye(25))
    bb.save(tmp_path / "bb")
    assert list((tmp_path / "bb").rglob("*.safetensors"))
    data = bb.prepare(S.defect_dataset(4))
    assert torch.equal(spec.load(tmp_path / "bb").embed(data), bb.embed(data))
    # the scratch twin: random atoms, no whitening, trainable like any layer
    twin = bb.fresh(seed=1)
    assert torch.equal(twin.encoder.whiten0, torch.eye(25)) and not torch.equal(twin.embed(data), bb.embed(data))
    assert all(p.requires_grad for p in twin.parameters())
    with pytest.raises(ValueError, match="corpus"):
        spec.build(None, **DICTIONARY)


def test_image_dihedral_views_are_the_eight_rotations_and_reflections():
    bb = get_modality("image").build(S.image_corpus(16), **DICTIONARY)
    x = bb.prepare(S.defect_dataset(6))
    views = bb.views(x, "dihedral")
    assert len(views) == 8 and torch.equal(views[0], x)
    assert torch.equal(views[1], torch.rot90(x, 1, dims=(-2, -1))) and torch.equal(views[4], torch.flip(x, dims=(-1,)))
    assert len({v[0].numpy().tobytes() for v in views}) == 8
    # a group: the views of a view are the same eight images
    assert {v[0].numpy().tobytes() for v in bb.views(views[5], "dihedral")} == {v[0].numpy().tobytes() for v in views}
    drawn = bb.random_view(x.repeat(20, 1, 1, 1), "dihedral", torch.Generator().manual_seed(0))
    which = [next(k for k in range(8) if torch.equal(d, views[k][i % 6])) for i, d in enumerate(drawn)]
    assert len(set(which)) >= 6  # each sample is one of its own views, drawn independently
    with pytest.raises(ValueError, match="dihedral"):
        bb.views(x, "crop")
    with pytest.raises(ValueError, match="sensor backbones have no 'dihedral'"):
        get_modality("sensor").build(S.sensor_corpus(32), d_model=32, ff_dim=64).views(torch.zeros(2, 3, 8), "dihedral")


def test_text_piece_features_are_the_normalised_log_counts_of_the_pieces():
    bb = get_modality("text").build(S.text_corpus(120), features="pieces", **TINY["text"])
    assert bb.feature_dim == bb.tokenizer.get_vocab_size() and not bb.finetunable and not bb.standardize_features
    text = "seal leak leak zzqx"  # zzqx: pieces that are no word of the corpus
    f = bb.embed(bb.tokenize([text, ""]))
    pieces = bb.tokenizer.encode(text, add_special_tokens=False).ids
    ids, counts = torch.unique(torch.tensor(pieces), return_counts=True)
    expected = torch.zeros(bb.feature_dim)
    expected[ids] = 1 + torch.log(counts.float())
    assert torch.allclose(f[0], expected / expected.norm(), atol=1e-6)
    vocab = bb.tokenizer.get_vocab()
    assert f[0, vocab["leak"]] > f[0, vocab["seal"]] > 0  # twice is weighted 1 + log 2
    assert float(f[0, [vocab[t] for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")]].abs().sum()) == 0.0
    assert float(f[1].abs().sum()) == 0.0  # an empty log is the zero vector, not NaN
    with pytest.raises(ValueError, match="features must be one of"):
        get_modality("text").build(S.text_corpus(20), features="words", **TINY["text"])


def test_text_piece_weights_are_the_corpus_idf_to_the_power_and_survive_save_load_and_the_twin(tmp_path):
    corpus = S.text_corpus(120)
    plain = get_modality("text").build(corpus, features="pieces", **TINY["text"])
    bb = get_modality("text").build(corpus, features="pieces", idf_power=0.5, **TINY["text"])
    vocab = bb.tokenizer.get_vocab()
    texts = corpus.texts
    holding = {p: sum(p in set(bb.tokenizer.encode(t).ids) for t in texts) for p in (vocab["leak"], vocab["[CLS]"])}
    assert holding[vocab["[CLS]"]] == len(texts) > holding[vocab["leak"]] > 0
    for piece, n_docs in holding.items():
        idf = torch.log(torch.tensor((1.0 + len(texts)) / (1.0 + n_docs))) + 1.0
        assert torch.isclose(bb.piece_weight[piece], idf ** 0.5)
    assert torch.equal(plain.piece_weight, torch.ones(plain.feature_dim))  # idf_power 0: unweighted
    text = "seal leak leak"
    f, g = bb.embed(bb.tokenize([text]))[0], plain.embed(plain.tokenize([text]))[0]
    assert torch.allclose(f, g * bb.piece_weight / (g * bb.piece_weight).norm(), atol=1e-6)
    bb.save(tmp_path / "bb")
    assert torch.equal(get_modality("text").load(tmp_path / "bb").embed(bb.tokenize([text]))[0], f)
    (tmp_path / "bb" / "piece_weights.safetensors").unlink()
    with pytest.raises(FileNotFoundError):  # never silently unweighted
        get_modality("text").load(tmp_path / "bb")
    dataset = S.maintenance_log_dataset(30)
    twin = bb.scratch_twin(1, dataset, [0, 3, 5, 8])  # its idf from the labeled texts alone, like its vocabulary
    labeled = [dataset.texts[i] for i in (0, 3, 5, 8)]
    assert torch.equal(twin.piece_weight, twin.inverse_document_frequency(labeled) ** 0.5)
    assert torch.equal(clone(bb).piece_weight, bb.piece_weight)


def test_text_scratch_twin_learns_its_vocabulary_from_the_labeled_texts_only_for_piece_features():
    corpus = S.text_corpus(120)
    dataset = S.maintenance_log_dataset(30)
    labeled = [0, 3, 5, 8]
    bags = get_modality("text").build(corpus, features="pieces", **TINY["text"])
    twin = bags.scratch_twin(1, dataset, labeled)
    from mfg_pipeline.modalities.text import train_tokenizer

    own = train_tokenizer([dataset.texts[i] for i in labeled], 300)
    assert twin.tokenizer.get_vocab() == own.get_vocab() != bags.tokenizer.get_vocab()
    assert twin.feature_dim == own.get_vocab_size()
    states = get_modality("text").build(corpus, **TINY["text"])  # MLM states: new weights, same vocabulary
    assert states.scratch_twin(1, dataset, labeled).tokenizer.get_vocab() == states.tokenizer.get_vocab()
