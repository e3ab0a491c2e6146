"""Pretraining assets: one self-supervised backbone per modality (group ``pretraining``)."""


import shutil
import time

import dagster as dg

from mfg_pipeline.modalities import MODALITIES, ModalitySpec
from mfg_pipeline.resources import ComputeResource, DataStore
from mfg_pipeline.storage import artifacts, atomic
from mfg_pipeline.training.device import Runtime


class PretrainConfig(dg.Config):
    """Self-supervised budget; unset values come from the modality registry defaults."""

    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    scale: float = 1.0  # multiplies the default steps (tests use ~0.02)
    seed: int = 0
    checkpoint_every: int = 50


def loss_curve_markdown(history: list[float], points: int = 15) -> str:
    if not history:
        return "(no steps)"
    n = len(history)
    picks = sorted({0, n - 1, *[round(i * (n - 1) / (points - 1)) for i in range(points)]})
    rows = ["| step | loss |", "|---:|---:|"] + [f"| {i + 1} | {history[i]:.4f} |" for i in picks]
    return "\n".join(rows)


def _backbone_asset(spec: ModalitySpec, scale: float) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.backbone_asset,
        group_name="pretraining",
        kinds=set(spec.kinds),
        deps=[dg.AssetKey(spec.corpus_asset)],
        description=f"Self-supervised {spec.name} backbone ({spec.backbone_cls.__name__}) pretrained on "
                    f"`{spec.corpus_asset}`; safetensors + JSON config.",
    )
    def _asset(context: dg.AssetExecutionContext, config: PretrainConfig, store: DataStore,
               compute: ComputeResource) -> dg.MaterializeResult:
        started = time.perf_counter()
        corpus = artifacts.load_corpus(store.asset_dir(spec.corpus_asset))
        runtime = Runtime.from_settings(compute)
        steps = config.steps if config.steps is not None else max(
            2, round(spec.pretrain_defaults.steps * scale * config.scale))
        out = store.asset_dir(spec.backbone_asset)
        ckpt = out / "checkpoints" / context.run_id  # a retry of this run resumes; a new run starts fresh
        backbone, result = spec.pretrain(corpus, steps=steps, batch_size=config.batch_size, lr=config.lr,
                                         seed=config.seed, runtime=runtime, checkpoint_dir=ckpt,
                                         checkpoint_every=config.checkpoint_every)
        backbone.save(out)
        atomic.write_json(out / "pretraining.json", {"history": result.history, "steps": result.steps_done,
                                                     "wall_s": result.wall_s, "n_corpus": len(corpus),
                                                     "runtime": runtime.describe()})
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        wall = time.perf_counter() - started
        context.log.info(f"{spec.backbone_asset}: {steps} steps, loss {result.history[0]:.4f} -> "
                         f"{result.final_loss:.4f}, {wall:.1f}s")
        return dg.MaterializeResult(metadata={
            "final_loss": dg.MetadataValue.float(float(result.final_loss)),
            "first_loss": dg.MetadataValue.float(float(result.history[0])),
            "steps": dg.MetadataValue.int(result.steps_done),
            "params": dg.MetadataValue.int(backbone.num_parameters()),
            "feature_dim": dg.MetadataValue.int(backbone.feature_dim),
            "n_corpus": dg.MetadataValue.int(len(corpus)),
            "wall_time_s": dg.MetadataValue.float(round(wall, 2)),
            "device": dg.MetadataValue.text(str(runtime.device)),
            "precision": dg.MetadataValue.text(runtime.precision),
            "loss_curve": dg.MetadataValue.md(loss_curve_markdown(result.history)),
            "path": dg.MetadataValue.path(str(out)),
        })

    return _asset


def pretraining_assets(modalities: dict[str, ModalitySpec] | None = None, scale: float = 1.0) -> list[dg.AssetsDefinition]:
    """``<modality>_backbone`` for each registered modality."""
    return [_backbone_asset(spec, scale) for spec in (modalities or MODALITIES).values()]
