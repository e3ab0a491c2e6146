"""Labeled datasets of the public profile (issue 12), with the protocols of ``ANCHORS.md``.

Each builder reads the cleaned partitions of its plant (``DatasetInputs``) like the simulator's
builders, but splits by the protocol of its benchmark instead of by hashed machine id:

- ``cmapss_rul_dataset`` (one per plant ``cmapss_fd00N``): train = every window of the train
  engines, test = the window ending at the last cycle of each test engine; target = RUL in
  cycles capped at 125 (target and truth alike); the 14 informative sensors, min-max scaled per
  operating regime with statistics fitted on train engines only; ``unit`` for validation splits.
- ``cwru_fault_dataset``: non-overlapping 2048-sample windows of the 9 fault classes (the 48 kHz
  normal baseline exists at load 0 only and is excluded); ``split`` = contiguous time blocks per
  recording (within-load protocol); ``load`` for the cross-load protocol (ignore ``split``).
- ``neu_defect_dataset``: 6 classes, stratified split per image; byte-identical images share a
  group and so a side.
- ``ai4i_failure_dataset``: Machine failure from the 5 process channels (+ product variant
  one-hot); failure-mode columns never inputs (``failure_mode``, from the failure events'
  ``failure_type``, is a label a task may train on); stratified split.
- ``excavator_system_dataset``: MajorSystem of excavator work orders; classes under
  ``MIN_CLASS_COUNT`` examples folded into ``other``; identical texts share a group and so a side.

Stratified splits are deterministic: per class, groups are ranked by sha256(salt:group) and the
first ``round(test_fraction * n)`` go to test (these datasets are static; exact stratification
matters more than stability under growth, which the machine split of ``splits`` keeps).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import torch

from mfg_pipeline.cleaning.partition import read_kept
from mfg_pipeline.datasets.labeled import DATASETS, DatasetInputs, DatasetSpec, labeled_images
from mfg_pipeline.datasets.splits import SPLIT_SALT
from mfg_pipeline.datasets.windows import sliding_windows, to_ns, windows_ending_at
from mfg_pipeline.landing.adapters import ai4i, cmapss, cwru
from mfg_pipeline.storage.artifacts import LabeledDataset

RUL_CAP = 125
MIN_CLASS_COUNT = 20
OTHER = "other"


def _hash_unit(key: str, salt: str = SPLIT_SALT) -> float:
    return int(hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def stratified_group_split(labels: pd.Series, groups: pd.Series, test_fraction: float) -> pd.Series:
    """``train``/``test`` per row: stratified by label, every group on one side.

    A group's class is its most frequent label (ties: the smallest); within each class the
    groups are ranked by hash and the first ``round(test_fraction * n_groups)`` go to test.
    """
    frame = pd.DataFrame({"label": labels.to_numpy(), "group": groups.astype(str).to_numpy()})
    group_label = frame.groupby("group")["label"].agg(lambda v: v.value_counts().sort_index().idxmax())
    test_groups: set[str] = set()
    for _, members in group_label.groupby(group_label):
        ranked = sorted(members.index, key=_hash_unit)
        test_groups.update(ranked[: int(round(test_fraction * len(ranked)))])
    return pd.Series(np.where(frame["group"].isin(test_groups), "test", "train"), index=labels.index)


def _finish(name: str, modality: str, inputs: torch.Tensor | None, index: pd.DataFrame, kind: str, target: str,
            split_rule: str, classes=None, **extra) -> LabeledDataset:
    index = index.reset_index(drop=True)
    meta = {"kind": kind, "target": target, "split_rule": split_rule, "classes": list(classes) if classes else None,
            "n_train": int((index["split"] == "train").sum()), "n_test": int((index["split"] == "test").sum()),
            "dropped_duplicates": 0, **extra}
    return LabeledDataset(name, modality, inputs, index, meta)


def _concat(parts: list, columns: list[str]) -> pd.DataFrame:
    frames = [read_kept(folder) for _, folder in parts]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


# --------------------------------------------------------------------------------------------
# C-MAPSS
# --------------------------------------------------------------------------------------------

def _regime(readings: pd.DataFrame) -> np.ndarray:
    """Operating condition of each cycle: FD002/FD004 have six (op1 ~ 0/10/20/25/35/42), the
    others one; rounding op1 separates them exactly."""
    return np.round(readings["op1"].to_numpy(np.float64)).astype(np.int64)


def _scale_per_regime(readings: pd.DataFrame, train: np.ndarray, channels: list[str]) -> tuple[pd.DataFrame, dict]:
    """Min-max per operating regime, fitted on the train engines' readings only."""
    out = readings.copy()
    regime = _regime(readings)
    values = readings[channels].to_numpy(np.float64, copy=True)
    fitted = {}
    global_low, global_high = values[train].min(0), values[train].max(0)
    for r in np.unique(regime):
        rows = regime == r
        fit = rows & train
        low, high = (values[fit].min(0), values[fit].max(0)) if fit.any() else (global_low, global_high)
        span = np.where(high > low, high - low, 1.0)
        values[rows] = np.where(high > low, (values[rows] - low) / span, 0.0)
        fitted[str(int(r))] = {"min": low.tolist(), "max": high.tolist(), "fitted_on_train_readings": int(fit.sum())}
    out[channels] = values.astype(np.float32)
    return out, fitted


def build_cmapss_rul_dataset(inputs: DatasetInputs) -> LabeledDataset:
    """C-MAPSS window of the 14 informative sensors -> RUL in cycles capped at 125; test = last cycle of each test engine."""
    channels = list(cmapss.INFORMATIVE)
    window = inputs.window
    readings = _concat(inputs.sensor, ["timestamp", "machine_id", *inputs.channels])
    events = _concat(inputs.failures, ["timestamp", "machine_id", "event"])
    failures = events[events["event"] == "failure"].groupby("machine_id")["timestamp"].min()
    readings = readings.sort_values(["machine_id", "timestamp"], kind="stable").reset_index(drop=True)
    parsed = {m: cmapss.parse_machine_id(m) for m in readings["machine_id"].unique()}
    is_train = readings["machine_id"].map(lambda m: parsed[m][1] == "train").to_numpy(bool)
    scaled, fitted = _scale_per_regime(readings, is_train, channels) if len(readings) else (readings, {})
    chunks, rows, skipped = [], [], {"no_failure_event": [], "too_short_for_window": []}
    for machine, frame in scaled.groupby("machine_id", sort=True):
        subset, split, _unit = parsed[machine]
        if machine not in failures.index:
            skipped["no_failure_event"].append(machine)
            continue
        last = frame["timestamp"].iloc[-1]
        if split == "train":
            tensor, spans = sliding_windows(frame, channels, window, 1, inputs.max_gap_s)
            ends = pd.Series(spans["end"]).reset_index(drop=True)
        else:
            ends = pd.Series([last])
            tensor, ok = windows_ending_at(frame, channels, ends, window, inputs.max_gap_s)
            ends = ends[ok].reset_index(drop=True)
        if not len(tensor):
            skipped["too_short_for_window"].append(machine)
            continue
        end_ns = to_ns(ends)
        midnight = to_ns(pd.Series(ends).dt.floor("D"))
        rul = (to_ns(pd.Series([failures[machine]]))[0] - end_ns) / 60e9
        chunks.append(tensor)
        rows.append(pd.DataFrame({
            "timestamp": ends, "machine_id": machine, "unit": machine, "subset": subset,
            "cycle": ((end_ns - midnight) // 60_000_000_000 + 1).astype(np.int64),
            "rul": rul.astype(np.float32), "target": np.minimum(rul, RUL_CAP).astype(np.float32),
            "is_last_cycle": end_ns == to_ns(pd.Series([last]))[0], "split": split}))
    tensor = torch.cat(chunks) if chunks else torch.zeros((0, len(channels), window))
    index = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["timestamp", "machine_id", "unit", "subset", "cycle", "rul", "target", "is_last_cycle", "split"])
    return _finish(
        "cmapss_rul_dataset", "sensor", tensor, index, "regression", "rul_cycles",
        "C-MAPSS protocol: train = all windows of the train engines (validate by `unit`), test = the window ending "
        "at the last cycle of each test engine (truth from RUL_FD00x)",
        channels=channels, window=window, cap=RUL_CAP, cap_h=None,
        subsets=sorted(index["subset"].unique().tolist()) if len(index) else [],
        scaling={"method": "min-max per operating regime (round(op1)), fitted on train-engine readings only",
                 "regimes": fitted},
        protocol=("Li et al. 2018 / rul-datasets: piecewise-linear RUL capped at 125 cycles for target and truth; "
                  "window 30/20/30/15 for FD001-FD004; 14 informative sensors; score RMSE and PHM08 "
                  "(sum exp(-d/13)-1 if d<0 else exp(d/10)-1, d = predicted - true) on the test rows. "
                  "One cycle = one synthetic minute; `rul` is uncapped."),
        skipped=skipped)


# --------------------------------------------------------------------------------------------
# CWRU
# --------------------------------------------------------------------------------------------

def build_cwru_fault_dataset(inputs: DatasetInputs) -> LabeledDataset:
    """CWRU 2048-sample drive-end windows -> 9 fault classes; time-block split per recording, `load` for cross-load."""
    window = inputs.window
    classes = cwru.FAULT_CLASSES
    blocks = max(2, int(round(1 / inputs.test_fraction)))
    recordings = _concat(inputs.tables.get("recordings", []), ["timestamp", "machine_id", "label"])
    info = recordings.drop_duplicates("machine_id").set_index("machine_id") if len(recordings) else recordings
    chunks, rows, excluded = [], [], {}
    for _, folder in inputs.sensor:
        frame = read_kept(folder)
        for machine, readings in frame.groupby("machine_id", sort=True):
            if machine not in info.index:
                excluded[machine] = "no recordings label row"
                continue
            label = str(info.at[machine, "label"])
            if label not in classes:
                excluded[machine] = f"label {label!r} is not one of the 9 fault classes (normal: 48 kHz, load 0 only)"
                continue
            tensor, spans = sliding_windows(readings, ["de"], window, window, inputs.max_gap_s)
            n = len(tensor)
            if not n:
                excluded[machine] = "shorter than one window"
                continue
            position = np.arange(n)
            block = position * blocks // n
            test_block = int(hashlib.sha256(f"{SPLIT_SALT}:{machine}".encode()).hexdigest()[:8], 16) % blocks
            chunks.append(tensor)
            rows.append(pd.DataFrame({
                "timestamp": spans["end"], "start": spans["start"], "machine_id": machine, "recording": machine,
                "label": label, "load": int(float(info.at[machine, "load_hp"])), "window_in_recording": position,
                "block": block, "target": classes.index(label),
                "split": np.where(block == test_block, "test", "train")}))
    tensor = torch.cat(chunks) if chunks else torch.zeros((0, 1, window))
    index = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["timestamp", "start", "machine_id", "recording", "label", "load", "window_in_recording", "block",
                 "target", "split"])
    loads = sorted(int(v) for v in index["load"].unique()) if len(index) else []
    return _finish(
        "cwru_fault_dataset", "sensor", tensor, index, "classification", "fault_class",
        f"within-load: each recording cut into {blocks} contiguous time blocks of non-overlapping windows, one block "
        "(hash of the recording) is test; cross-load: train on `load` a, test on `load` b, ignoring `split`",
        classes=classes, channels=["de"], window=window, stride=window, blocks=blocks, loads=loads,
        sample_rate_hz=cwru.SAMPLE_RATE_HZ, synthetic_sample_period_s=cwru.SYNTHETIC_PERIOD_S,
        cross_load_pairs=[[a, b] for a in loads for b in loads if a != b],
        wdcnn_pairs=[[a, b] for a in (1, 2, 3) for b in (1, 2, 3) if a != b and a in loads and b in loads],
        excluded=excluded,
        protocol=("WDCNN (Zhang et al. 2017): 2048-sample windows of the 12 kHz drive-end channel; honest splits "
                  "only: contiguous time blocks per recording, or cross-load transfer (~90% average over the six "
                  "pairs of loads 1-3). Normalise per window: amplitude changes with load."))


# --------------------------------------------------------------------------------------------
# NEU
# --------------------------------------------------------------------------------------------

def build_neu_defect_dataset(inputs: DatasetInputs) -> LabeledDataset:
    """NEU surface image -> 6 defect classes; stratified split per image, identical images on one side."""
    classes = inputs.classes["image"]
    tensor, index = labeled_images(inputs, 200)
    index["split"] = stratified_group_split(index["label"], index["sha256"], inputs.test_fraction) if len(index) else []
    duplicates = int(index["sha256"].duplicated(keep=False).sum()) if len(index) else 0
    return _finish("neu_defect_dataset", "image", tensor, index, "classification", "defect_type",
                   "stratified by class, per image; byte-identical images (sha256) kept on one side",
                   classes=classes, image_size=int(tensor.shape[-1]), duplicate_images=duplicates,
                   protocol="6-class accuracy on a stratified held-out split (patches_101 == patches_105 on one side)")


# --------------------------------------------------------------------------------------------
# AI4I 2020
# --------------------------------------------------------------------------------------------

# Physical quantities the AI4I failure mechanisms are defined on (UCI description: heat
# dissipation on the process-air temperature difference, power = torque * angular speed, overstrain
# on tool wear * torque). Computed from the cleaned readings of the same row, for every model
# alike; on the same split they raise the boosting baseline's F1 from ~0.75 to ~0.84.
AI4I_DERIVED = ("temp_rise_k", "power_w", "strain_nm_min")


def ai4i_derived(readings: pd.DataFrame) -> np.ndarray:
    """Readings with the ``ai4i.CHANNELS`` columns -> [N, 3] ``AI4I_DERIVED``."""
    air, process, speed, torque, wear = (readings[c].to_numpy(np.float64) for c in ai4i.CHANNELS)
    return np.stack([process - air, torque * speed * (2 * np.pi / 60), torque * wear], axis=1).astype(np.float32)


# The UCI description's failure rules, by which the dataset was generated: heat dissipation (HDF)
# below 8.6 K of temperature rise at below 1380 rpm, power (PWF) outside 3500-9000 W, overstrain
# (OSF) above a strain limit per product variant. Tool-wear (TWF, at a random wear of 200-240 min)
# and random (RNF) failures have no rule.
AI4I_STRAIN_LIMIT = {"L": 11_000.0, "M": 12_000.0, "H": 13_000.0}


# What the models train on (``failure_mode``, TaskSpec.train_target): a failure's mode, the ones with
# a mechanism in the readings first ("TWF+OSF" -> OSF); random and unspecified failures are "other".
# Each mode is one simple boundary, where "failure" is their union plus the unpredictable ones.
AI4I_MODE_CLASSES = ("none", "HDF", "PWF", "OSF", "TWF", "other")


def ai4i_failure_mode(failure_type: str) -> str:
    """The ``failure_type`` of a failure event (``HDF``, ``TWF+OSF``, ``unspecified``) -> its class."""
    modes = set(str(failure_type).split("+"))
    return next((m for m in AI4I_MODE_CLASSES[1:-1] if m in modes), "other")


def ai4i_rule_failures(derived: np.ndarray, speed: np.ndarray, variant: pd.Series) -> np.ndarray:
    """Rows the UCI failure rules flag, from ``AI4I_DERIVED`` [N, 3], the speed (rpm) and the
    product variant. Temperatures are published to 0.1 K, so the rise is compared at that
    resolution (a float difference of 8.6 K can land on either side of 8.6)."""
    rise, power, strain = derived[:, 0], derived[:, 1], derived[:, 2]
    limit = variant.map(AI4I_STRAIN_LIMIT).to_numpy(np.float64)
    return (((np.round(rise, 1) < 8.6) & (speed < 1380)) | (power < 3500) | (power > 9000) | (strain > limit))


def ai4i_rule_reference(flagged: np.ndarray, target: np.ndarray, test: np.ndarray) -> dict:
    """The failure rules scored as a classifier on the test rows: what a model that had learnt the
    mechanisms exactly would score (not a model; the report shows it beside the anchors)."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    y, pred = target[test], flagged[test]
    return {"name": "the UCI description's failure rules (HDF, PWF, OSF) applied to each test reading",
            "metric": "f1", "value": float(f1_score(y, pred, zero_division=0)),
            "precision": float(precision_score(y, pred, zero_division=0)),
            "recall": float(recall_score(y, pred, zero_division=0)),
            "note": "the rules the dataset was generated by, not learnt; tool-wear and random failures have none, "
                    "so a model can score only a little above it"}


def build_ai4i_failure_dataset(inputs: DatasetInputs) -> LabeledDataset:
    """AI4I process reading (5 channels, 3 physical quantities derived from them, product
    variant) -> Machine failure; the failure modes are labels (``failure_mode``), never inputs."""
    channels = list(inputs.channels)
    readings = _concat(inputs.sensor, ["timestamp", "machine_id", *channels])
    events = _concat(inputs.failures, ["timestamp", "machine_id", "event", "failure_type"])
    failures = events.loc[events["event"] == "failure"]
    types = failures["failure_type"].fillna("unspecified") if "failure_type" in failures else ["unspecified"] * len(failures)
    mode_of = dict(zip(zip(failures["machine_id"], to_ns(failures["timestamp"])), map(ai4i_failure_mode, types)))
    readings = readings.sort_values(["timestamp", "machine_id"], kind="stable").reset_index(drop=True)
    failure_mode = [mode_of.get(k, "none") for k in zip(readings["machine_id"], to_ns(readings["timestamp"]))]
    target = np.array([m != "none" for m in failure_mode], dtype=np.int64)
    variant = readings["machine_id"].str.removeprefix("ai4i-")
    onehot = np.stack([(variant == t).to_numpy(np.float32) for t in ai4i.TYPES], axis=1) if len(readings) else np.zeros((0, 3), np.float32)
    derived = ai4i_derived(readings)
    values = np.concatenate([readings[channels].to_numpy(np.float32), derived, onehot], axis=1)
    tensor = torch.from_numpy(values.copy())[:, :, None]
    index = readings[["timestamp", "machine_id"]].assign(product_type=variant, target=target, failure_mode=failure_mode)
    index["split"] = stratified_group_split(index["target"], index["machine_id"] + "@" + index["timestamp"].astype(str),
                                            inputs.test_fraction) if len(index) else []
    test = (index["split"] == "test").to_numpy()
    reference = (ai4i_rule_reference(ai4i_rule_failures(derived.astype(np.float64), readings["speed_rpm"].to_numpy(np.float64),
                                                        variant), target, test) if test.any() else None)
    return _finish("ai4i_failure_dataset", "sensor", tensor, index, "classification", "machine_failure",
                   "stratified by Machine failure, per reading (each reading is an independent process run)",
                   classes=("no_failure", "failure"), classes_of={"failure_mode": list(AI4I_MODE_CLASSES)},
                   channels=[*channels, *AI4I_DERIVED, *(f"type_{t}" for t in ai4i.TYPES)],
                   window=1, failure_events_without_reading=len(mode_of) - int(target.sum()),
                   excluded_columns=list(ai4i.MODES), positive_rate=float(target.mean()) if len(target) else 0.0,
                   reference=reference,
                   protocol=("Report F1, AUROC and PR-AUC for Machine failure. The failure-mode columns "
                             "TWF/HDF/PWF/OSF/RNF leak the target and are not inputs (they live only in the "
                             "failures label table's failure_type)."))


# --------------------------------------------------------------------------------------------
# Excavator work orders
# --------------------------------------------------------------------------------------------

def build_excavator_system_dataset(inputs: DatasetInputs) -> LabeledDataset:
    """Excavator work-order text -> MajorSystem (rare classes -> other); identical texts on one side."""
    texts = _concat(inputs.text, ["timestamp", "machine_id", "text", "label"])
    index = texts[texts["label"].notna() & texts["machine_id"].str.startswith("excavator-")].copy()
    counts = index["label"].value_counts()
    kept = sorted(counts[counts >= MIN_CLASS_COUNT].index)
    classes = (*kept, OTHER) if (counts < MIN_CLASS_COUNT).any() else tuple(kept)
    index["system"] = index["label"].astype(str)
    index["label"] = index["system"].where(index["system"].isin(kept), OTHER)
    index["target"] = index["label"].map({c: i for i, c in enumerate(classes)}).astype("int64")
    index["split"] = stratified_group_split(index["label"], index["text"], inputs.test_fraction) if len(index) else []
    index = index.reset_index(drop=True)
    return _finish("excavator_system_dataset", "text", None, index, "classification", "major_system",
                   "stratified by class, grouped by (normalised) text: identical texts on one side",
                   classes=classes, min_class_count=MIN_CLASS_COUNT,
                   folded_into_other={str(k): int(v) for k, v in counts[counts < MIN_CLASS_COUNT].items()},
                   duplicate_text_rows=int(index["text"].duplicated(keep=False).sum()),
                   protocol=("No published benchmark: baseline TF-IDF + logistic regression on the same split; the "
                             "finetuned text backbone must beat it on macro-F1. `system` is the unfolded label."))


PUBLIC_DATASETS = (
    DatasetSpec("cmapss_rul_dataset", "sensor", ("sensor", "failures"), build_cmapss_rul_dataset),
    DatasetSpec("cwru_fault_dataset", "sensor", ("sensor", "recordings"), build_cwru_fault_dataset),
    DatasetSpec("neu_defect_dataset", "image", ("image",), build_neu_defect_dataset),
    DatasetSpec("ai4i_failure_dataset", "sensor", ("sensor", "failures"), build_ai4i_failure_dataset),
    DatasetSpec("excavator_system_dataset", "text", ("text",), build_excavator_system_dataset),
)
DATASETS.update({spec.name: spec for spec in PUBLIC_DATASETS})
