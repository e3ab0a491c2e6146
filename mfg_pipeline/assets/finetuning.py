"""Finetuning assets: ``finetuned_<task>`` per registry entry (group ``finetuning``).

Each depends on exactly its modality's backbone and its labeled dataset, trains the task head
(linear probe or full finetune, per the TaskSpec) on the whole TRAIN split (validation data held
out as the protocol does: by machine, or per sample where the task says so), scores the held-out
TEST split, and saves the task model as safetensors + JSON. A binary task evaluated at an
F1-optimal threshold (``TaskSpec.threshold`` not "argmax") ships that decision rule with the
weights: ``decision_threshold`` in ``task_model.json``, chosen on the model's own validation
rows, and its test metrics are taken at it (at argmax they would describe a rule nobody uses).
"""


import time

import dagster as dg
import numpy as np
import torch

from mfg_pipeline.assets.keys import asset_key
from mfg_pipeline.assets.pretraining import asset_path
from mfg_pipeline.modalities import get_modality, take
from mfg_pipeline.resources import ComputeResource, DataStore
from mfg_pipeline.storage import artifacts, atomic, versioned
from mfg_pipeline.tasks.heads import input_views, predict_views, train_head
from mfg_pipeline.tasks.metrics import best_f1_threshold, compute_metrics
from mfg_pipeline.tasks.protocol import (class_names, encode_targets, evaluated_scores, fit_split_points, head_settings,
                                         hold_out_validation, n_classes_of, training_targets)
from mfg_pipeline.tasks.registry import TASKS, TaskSpec
from mfg_pipeline.training.device import Runtime


class FinetuneConfig(dg.Config):
    scale: float = 1.0  # multiplies the task's step budget
    seed: int = 0


def finetune_task(task: TaskSpec, store: DataStore, runtime: Runtime, seed: int = 0, prefix: str = "") -> dict:
    """Work of ``finetuned_<task>``: load backbone + dataset, train the head, score TEST, save."""
    spec = get_modality(task.modality)
    backbone = spec.load(store.asset_dir(asset_path(prefix, task.backbone_asset)))
    dataset = artifacts.load_labeled_dataset(store.asset_dir(asset_path(prefix, task.dataset)))
    split = dataset.index["split"].to_numpy()
    train_pos, test_pos = np.where(split == "train")[0], np.where(split == "test")[0]
    y = encode_targets(dataset, task)
    fit_pos, val_pos = hold_out_validation(task, dataset, y, train_pos, seed)
    inputs = backbone.prepare(dataset)
    if task.split_point_trees:
        backbone = backbone.with_split_points(fit_split_points(task, inputs, y, fit_pos, seed))
    n_out = n_classes_of(dataset, y)
    y_fit, n_fit = training_targets(dataset, task, y)
    settings = head_settings(task, n_fit, task.finetune_mode, seed, task.lr, task.body_lr_scale, backbone)
    val = (take(inputs, torch.as_tensor(val_pos)), y_fit[val_pos]) if val_pos is not None else None
    predictor = train_head(backbone, take(inputs, torch.as_tensor(fit_pos)), y_fit[fit_pos], settings, val=val,
                           runtime=runtime)

    def scored(inputs):
        # trained on an augmentation's copies: an input scores as the mean over its copies, as in the protocol
        return evaluated_scores(task, predict_views(predictor, input_views(backbone, inputs, task.augment), runtime))

    scores = scored(take(inputs, torch.as_tensor(test_pos)))
    threshold = None
    if task.chooses_threshold(n_out) and val is not None:
        threshold = best_f1_threshold(y[val_pos], scored(val[0])[:, 1])
    metrics = compute_metrics(task.kind, y[test_pos], scores, threshold)
    out = store.asset_dir(asset_path(prefix, task.finetuned_asset))
    extra = {"task": task.name, "modality": task.modality, "mode": task.finetune_mode, "augment": task.augment,
             "n_outputs": n_fit, "classes": class_names(dataset),
             # the weights' outputs are these classes; P(positive) = 1 - P(the first)
             **({"train_target": task.train_target, "output_classes": class_names(dataset, task.train_target)}
                if task.train_target else {}),
             "backbone_config": backbone.config if task.modality != "text" else None,
             "decision_threshold": threshold, "test_metrics": metrics,
             "n_fit": len(fit_pos), "n_val": 0 if val_pos is None else len(val_pos),
             "refit_on_fit_and_val": predictor.chosen_by is not None, "n_test": len(test_pos),
             # what the saved weights were trained on: the refit also saw the validation rows
             "n_trained_on": len(fit_pos) + (len(val_pos) if predictor.chosen_by is not None else 0)}

    def write(folder):
        predictor.save(folder, extra)
        chosen_by = predictor.chosen_by.to_dict() if predictor.chosen_by else None
        atomic.write_json(folder / "training.json", {**predictor.result.to_dict(), "refit_after": chosen_by})
        return {"test_metrics": metrics}

    version_dir = versioned.publish(out, write)
    return {"metrics": metrics, "threshold": threshold, "n_fit": int(len(fit_pos)), "n_test": int(len(test_pos)),
            "steps_done": predictor.result.steps_done, "path": str(version_dir)}


def _finetuned_asset(task: TaskSpec, prefix: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(prefix, task.finetuned_asset),
        group_name="finetuning",
        kinds={"pytorch"},
        deps=[asset_key(prefix, task.backbone_asset), asset_key(prefix, task.dataset)],
        description=f"{task.description or task.name}: {task.finetune_mode} on `{task.backbone_asset}`, "
                    f"all TRAIN labels of `{task.dataset}`, scored on TEST.",
    )
    def _asset(context: dg.AssetExecutionContext, config: FinetuneConfig, store: DataStore,
               compute: ComputeResource) -> dg.MaterializeResult:
        started = time.perf_counter()
        scaled = task.scaled(config.scale)
        out = finetune_task(scaled, store, Runtime.from_settings(compute), config.seed, prefix)
        wall = time.perf_counter() - started
        context.log.info(f"{task.finetuned_asset}: test {task.metric}={out['metrics'][task.metric]:.4f} ({wall:.1f}s)")
        return dg.MaterializeResult(metadata={
            f"test_{task.metric}": dg.MetadataValue.float(float(out["metrics"][task.metric])),
            "test_metrics": dg.MetadataValue.json(out["metrics"]),
            "n_fit": dg.MetadataValue.int(out["n_fit"]),
            "n_test": dg.MetadataValue.int(out["n_test"]),
            "steps": dg.MetadataValue.int(out["steps_done"]),
            "mode": dg.MetadataValue.text(task.finetune_mode),
            **({} if out["threshold"] is None else {"decision_threshold": dg.MetadataValue.float(out["threshold"])}),
            "wall_time_s": dg.MetadataValue.float(round(wall, 2)),
            "path": dg.MetadataValue.path(out["path"]),
        })

    return _asset


def finetuning_assets(tasks: tuple[TaskSpec, ...] = TASKS, prefix: str = "") -> list[dg.AssetsDefinition]:
    return [_finetuned_asset(t, prefix) for t in tasks]
