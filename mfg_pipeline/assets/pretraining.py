"""Pretraining assets: one self-supervised backbone per modality (group ``pretraining``)."""


import shutil
import time
from pathlib import Path

import dagster as dg

from mfg_pipeline.assets.ingestion import RETRY
from mfg_pipeline.assets.keys import asset_key
from mfg_pipeline.modalities import MODALITIES, ModalitySpec
from mfg_pipeline.resources import ComputeResource, DataStore
from mfg_pipeline.storage import artifacts, atomic, versioned
from mfg_pipeline.training.device import Runtime


class PretrainConfig(dg.Config):
    """Self-supervised budget; unset values come from the modality registry defaults."""

    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    scale: float = 1.0  # multiplies the default steps (tests use ~0.02)
    seed: int = 0
    checkpoint_every: int = 50


def asset_path(prefix: str, name: str) -> str:
    """Where that asset's artifacts live under ``DataStore.work_dir`` / ``reports_dir``."""
    return f"{prefix}/{name}" if prefix else name


def loss_curve_markdown(history: list[float], points: int = 15) -> str:
    if not history:
        return "(no steps)"
    n = len(history)
    picks = sorted({0, n - 1, *[round(i * (n - 1) / (points - 1)) for i in range(points)]})
    rows = ["| step | loss |", "|---:|---:|"] + [f"| {i + 1} | {history[i]:.4f} |" for i in picks]
    return "\n".join(rows)


def _backbone_asset(spec: ModalitySpec, scale: float, prefix: str, overrides: dict) -> dg.AssetsDefinition:
    """``overrides``: this plant's ``{"model": {...config...}, "steps": n, "batch_size": n, "lr": x}``
    for the modality (e.g. CWRU's longer patches); run config still wins."""
    default_steps = overrides.get("steps", spec.pretrain_defaults.steps)
    @dg.asset(
        key=asset_key(prefix, spec.backbone_asset),
        group_name="pretraining",
        kinds=set(spec.kinds),
        deps=[asset_key(prefix, spec.corpus_asset)],
        retry_policy=RETRY,  # a retried step resumes from its checkpoint
        pool="gpu",  # `dagster instance concurrency set gpu 1` serialises training on one GPU
        description=f"Self-supervised {spec.name} backbone ({spec.backbone_cls.__name__}) pretrained on "
                    f"`{spec.corpus_asset}`; safetensors + JSON config.",
    )
    def _asset(context: dg.AssetExecutionContext, config: PretrainConfig, store: DataStore,
               compute: ComputeResource) -> dg.MaterializeResult:
        started = time.perf_counter()
        corpus = artifacts.load_corpus(store.asset_dir(asset_path(prefix, spec.corpus_asset)))
        runtime = Runtime.from_settings(compute)
        steps = config.steps if config.steps is not None else max(2, round(default_steps * scale * config.scale))
        out = store.asset_dir(asset_path(prefix, spec.backbone_asset))
        # Keyed by the root run: a step retry and a re-execution of a killed run ("from failure")
        # resume from the last checkpoint; a brand-new run starts fresh.
        ckpt = out / "checkpoints" / (context.run.root_run_id or context.run.run_id)
        backbone, result = spec.pretrain(corpus, steps=steps, batch_size=config.batch_size or overrides.get("batch_size"),
                                         lr=config.lr or overrides.get("lr"), seed=config.seed, runtime=runtime,
                                         checkpoint_dir=ckpt, checkpoint_every=config.checkpoint_every,
                                         model_overrides=overrides.get("model"))
        def write(folder: Path) -> dict:
            backbone.save(folder)
            atomic.write_json(folder / "pretraining.json", {"history": result.history, "steps": result.steps_done,
                                                            "wall_s": result.wall_s, "n_corpus": len(corpus),
                                                            "runtime": runtime.describe()})
            return {"final_loss": result.final_loss, "steps": result.steps_done}

        version_dir = versioned.publish(out, write)  # readers see the old or the new backbone, never half
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
            "path": dg.MetadataValue.path(str(version_dir)),
        })

    return _asset


def pretraining_assets(modalities: dict[str, ModalitySpec] | None = None, scale: float = 1.0,
                       prefix: str = "", overrides: dict[str, dict] | None = None) -> list[dg.AssetsDefinition]:
    """``<modality>_backbone`` for each registered modality (keys prefixed by a plant name)."""
    return [_backbone_asset(spec, scale, prefix, (overrides or {}).get(spec.name, {}))
            for spec in (modalities or MODALITIES).values()]
