import torch
from torch import nn

from mfg_pipeline.training.device import Runtime, resolve_device
from mfg_pipeline.training.loop import LoopConfig, batch_indices, fit, load_checkpoint
from mfg_pipeline.training.seeding import derive_seed


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=g)
    y = x @ torch.randn(5, 1, generator=g) + 0.1 * torch.randn(64, 1, generator=g)
    torch.manual_seed(123)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))

    def loss_fn(m, step, gen):
        idx = batch_indices(len(x), 16, gen)
        noise = torch.randn(len(idx), 5, generator=gen) * 0.01  # augmentation from the step generator
        return nn.functional.mse_loss(m(x[idx] + noise), y[idx])

    return model, loss_fn, (x, y)


def test_loss_decreases_and_history_is_returned():
    model, loss_fn, _ = _problem()
    result = fit(model, loss_fn, LoopConfig(steps=60, lr=1e-2, seed=0))
    assert len(result.history) == 60 and result.steps_done == 60
    assert sum(result.history[-10:]) / 10 < 0.5 * sum(result.history[:10]) / 10


def test_same_seed_same_result():
    a, fa, _ = _problem()
    b, fb, _ = _problem()
    ra = fit(a, fa, LoopConfig(steps=15, lr=1e-2, seed=3))
    rb = fit(b, fb, LoopConfig(steps=15, lr=1e-2, seed=3))
    assert ra.history == rb.history
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


class _Crash(RuntimeError):
    pass


def test_resume_after_crash_equals_uninterrupted(tmp_path):
    config = dict(steps=20, lr=1e-2, seed=7, checkpoint_every=5, warmup_steps=3)
    ref_model, ref_loss, _ = _problem()
    ref = fit(ref_model, ref_loss, LoopConfig(**config))

    model, loss_fn, _ = _problem()

    def crashing(m, step, gen):
        if step == 13:
            raise _Crash()
        return loss_fn(m, step, gen)

    ckpt = tmp_path / "ckpt"
    try:
        fit(model, crashing, LoopConfig(**config, checkpoint_dir=str(ckpt)))
        raise AssertionError("should have crashed")
    except _Crash:
        pass
    meta, tensors = load_checkpoint(ckpt)
    assert meta["step"] == 10 and any(k.startswith("optim.") for k in tensors) and "rng.cpu" in tensors
    assert len(list(ckpt.glob("ckpt-*.safetensors"))) == 1

    fresh, loss_fn2, _ = _problem()  # a new process: new model object, same code
    resumed = fit(fresh, loss_fn2, LoopConfig(**config, checkpoint_dir=str(ckpt)))
    assert resumed.resumed_from == 10
    assert resumed.history == ref.history
    for pa, pb in zip(ref_model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(pa, pb)


def test_early_stopping_restores_best_weights():
    model, loss_fn, (x, y) = _problem()
    calls = []

    def validate(m):
        score = float(nn.functional.mse_loss(m(x), y))
        calls.append(score)
        return 10.0 if len(calls) > 2 else score  # gets "worse" after the 2nd evaluation

    result = fit(model, loss_fn, LoopConfig(steps=100, lr=1e-2, eval_every=5, patience=2, higher_is_better=False),
                 validate=validate)
    assert result.stopped_early and result.steps_done == 20
    assert result.best_step == 10
    model.eval()
    with torch.no_grad():
        assert abs(float(nn.functional.mse_loss(model(x), y)) - calls[1]) < 1e-6


def test_param_group_lr_scale_freezes_nothing_but_scales():
    model, loss_fn, _ = _problem()
    before = [p.detach().clone() for p in model.parameters()]
    groups = [{"params": list(model[0].parameters()), "lr_scale": 0.0}, {"params": list(model[3].parameters())}]
    fit(model, loss_fn, LoopConfig(steps=5, lr=1e-2, weight_decay=0.0), param_groups=groups)
    after = list(model.parameters())
    assert torch.equal(before[0], after[0]) and not torch.equal(before[2], after[2])


def test_the_foreach_update_gives_the_weights_of_the_per_tensor_loop_bit_for_bit(monkeypatch):
    """The loop's AdamW and gradient clipping run foreach (faster); the published numbers were
    trained with the per-tensor loop, so the two must agree exactly."""
    config = LoopConfig(steps=40, lr=1e-2, weight_decay=0.01, warmup_steps=5, grad_clip=0.05, seed=1)

    def trained():
        model, loss_fn, _ = _problem()
        groups = [{"params": list(model[0].parameters()), "lr_scale": 0.1}, {"params": list(model[3].parameters())}]
        return model, fit(model, loss_fn, config, param_groups=groups)

    fast, fast_result = trained()
    adamw, clip = torch.optim.AdamW, torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.optim, "AdamW", lambda *a, **k: adamw(*a, **{**k, "foreach": False}))
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: clip(*a, **{**k, "foreach": False}))
    slow, slow_result = trained()
    assert fast_result.history == slow_result.history
    assert all(torch.equal(a, b) for a, b in zip(fast.parameters(), slow.parameters()))
    assert not torch.equal(fast[0].weight, _problem()[0][0].weight)  # it trained


def test_runtime_settings():
    class Settings:
        device, precision, num_threads = "cpu", "bf16", 0

    rt = Runtime.from_settings(Settings())
    assert rt.device == torch.device("cpu") and rt.precision == "bf16"
    with rt.autocast():
        out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    # reports say which CPU kernels computed them: their floats differ between instruction sets
    assert rt.describe() == {"device": "cpu", "precision": "bf16", "num_threads": torch.get_num_threads(),
                             "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    assert resolve_device("auto").type in {"cpu", "cuda"}
    assert derive_seed(1, "a") == derive_seed(1, "a") != derive_seed(1, "b")


def test_bf16_training_step_runs_on_cpu():
    model, loss_fn, _ = _problem()
    result = fit(model, loss_fn, LoopConfig(steps=3, lr=1e-2), Runtime.create("cpu", "bf16"))
    assert all(torch.isfinite(torch.tensor(result.history)))


def test_checkpoint_with_tied_weights_resumes(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.out = nn.Linear(4, 10, bias=False)
            self.out.weight = self.emb.weight

        def forward(self, ids):
            return self.out(self.emb(ids))

    ids = torch.randint(0, 10, (32, 3), generator=torch.Generator().manual_seed(0))

    def loss_fn(m, step, gen):
        return nn.functional.cross_entropy(m(ids).reshape(-1, 10), ids.reshape(-1))

    torch.manual_seed(0)
    a = Tied()
    fit(a, loss_fn, LoopConfig(steps=6, lr=1e-2, checkpoint_dir=str(tmp_path / "c"), checkpoint_every=3))
    meta, tensors = load_checkpoint(tmp_path / "c")
    assert meta["aliases"] and torch.equal(tensors["model.out.weight"], tensors["model.emb.weight"])
    torch.manual_seed(0)
    b = Tied()
    fit(b, loss_fn, LoopConfig(steps=6, lr=1e-2, checkpoint_dir=str(tmp_path / "c"), checkpoint_every=3))
    assert torch.equal(a.emb.weight, b.emb.weight) and b.out.weight is b.emb.weight


def test_the_runtime_gives_blas_and_openmp_the_same_thread_count_as_torch():
    from threadpoolctl import threadpool_info

    def pools() -> list[tuple[str, int]]:
        return [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]

    try:
        Runtime.create("cpu", num_threads=2)
        assert torch.get_num_threads() == 2
        assert {threads for _, threads in pools()} == {2}
        Runtime.create("cpu")  # auto: one thread per process, in every pool
        assert torch.get_num_threads() == 1
        found = pools()
        assert {threads for _, threads in found} == {1}
        # numpy's and scipy's OpenBLAS, torch's and scikit-learn's OpenMP at least
        assert [api for api, _ in found].count("openblas") >= 2 and [api for api, _ in found].count("openmp") >= 2
    finally:
        Runtime.create("cpu")
