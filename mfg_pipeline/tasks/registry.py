"""One ``TaskSpec`` per task. Adding a task = one entry in TASKS (plus its labeled dataset).

Budgets (steps) are hyperparameters tuned for the default profile on 2 CPU cores; ``scaled``
shrinks them (tests use a few steps).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mfg_pipeline.tasks.metrics import higher_is_better as _hib


@dataclass(frozen=True)
class TaskSpec:
    name: str
    modality: str
    dataset: str
    kind: str  # classification | regression
    metric: str
    target: str = "target"
    label_fractions: tuple[float, ...] = (0.01, 0.05, 0.1, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    finetune_mode: str = "linear_probe"  # linear_probe | full
    probe: str = "cv"  # linear_probe solver: cv (closed form, regularisation by internal CV) | sgd
    steps: int = 100  # optimizer steps per model and run (the same for pretrained and scratch)
    batch_size: int = 32
    lr: float = 3e-3
    body_lr_scale: float = 0.1  # pretrained body in "full" mode
    scratch_lr: float = 1e-3  # the scratch twin trains every layer at this rate, same steps
    weight_decay: float = 1e-3
    eval_every: int = 25  # early stopping on a validation subset of the labeled TRAIN machines
    patience: int = 3
    min_val_samples: int = 40  # below this many labels: no validation split, fixed budget
    baseline: str = "logreg"  # logreg | gbm | ridge
    description: str = ""

    @property
    def higher_is_better(self) -> bool:
        return _hib(self.metric)

    @property
    def finetuned_asset(self) -> str:
        return f"finetuned_{self.name}"

    @property
    def evaluation_asset(self) -> str:
        return f"evaluation_{self.name}"

    @property
    def backbone_asset(self) -> str:
        return f"{self.modality}_backbone"

    def scaled(self, scale: float) -> "TaskSpec":
        """Budgets multiplied by ``scale`` (>= 2 steps)."""
        if scale == 1.0:
            return self
        steps = max(2, int(round(self.steps * scale)))
        return replace(self, steps=steps, eval_every=max(1, int(round(self.eval_every * scale))))


TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("product_quality", "sensor", "quality_dataset", "classification", "auroc",
             description="sensor windows preceding a product batch -> batch passed quality (0/1)"),
    TaskSpec("equipment_failure", "sensor", "failure_dataset", "classification", "auroc",
             description="sensor window -> failure within the horizon (0/1)"),
    TaskSpec("remaining_useful_life", "sensor", "rul_dataset", "regression", "rmse", baseline="gbm",
             description="sensor window -> remaining useful life in hours (capped)"),
    TaskSpec("surface_defect_type", "image", "defect_dataset", "classification", "macro_f1", steps=60, batch_size=16,
             eval_every=20,
             description="inspection image -> defect class (6)"),
    TaskSpec("maintenance_log_category", "text", "maintenance_log_dataset", "classification", "macro_f1",
             description="technician log text -> maintenance category"),
)


def get_task(name: str, tasks: tuple[TaskSpec, ...] = TASKS) -> TaskSpec:
    for task in tasks:
        if task.name == name:
            return task
    raise KeyError(f"unknown task {name!r}; known: {[t.name for t in tasks]}")
