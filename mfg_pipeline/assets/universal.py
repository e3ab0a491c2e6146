"""``universal_sensor_backbone``: one sensor encoder pretrained on every sensor corpus (group ``pretraining``).

Its sources are the ``sensor_corpus`` of every plant of the profile whose windows have a shape
(window >= 8 samples: AI4I's single readings have none) plus, optionally, the simulator's
``sensor_corpus`` of the default code location: a cross-location dependency, which Dagster
resolves by asset key across the workspace (the location itself shows it as external).
"""


import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from mfg_pipeline.assets.ingestion import RETRY
from mfg_pipeline.assets.keys import asset_key
from mfg_pipeline.assets.pretraining import loss_curve_markdown
from mfg_pipeline.modalities import universal
from mfg_pipeline.profiles import Plant, Profile
from mfg_pipeline.resources import ComputeResource, DataStore
from mfg_pipeline.storage import artifacts, atomic, versioned
from mfg_pipeline.training.device import Runtime

UNIVERSAL_KEY = dg.AssetKey("universal_sensor_backbone")
UNIVERSAL_PATH = "universal_sensor_backbone"  # under the profile's work directory
SIMULATOR_KEY = dg.AssetKey("sensor_corpus")  # the default location's (unprefixed) corpus
SIMULATOR_SOURCE = "simulator"
MIN_WINDOW = 8  # one patch: shorter windows have no shape to pretrain on


class UniversalPretrainConfig(dg.Config):
    """Self-supervised budget; unset values come from ``modalities.universal`` defaults."""

    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    scale: float = 1.0  # multiplies the default steps
    seed: int = 0
    checkpoint_every: int = 100
    # family: each family of plants (name prefix: cmapss_fd001..4 are one) equally likely, then its
    # plants equally; source: every corpus equally likely (four C-MAPSS subsets then take 4/6).
    balance: str = "family"


@dataclass(frozen=True)
class Source:
    """One corpus the universal backbone pretrains on: ``relative`` is resolved against the
    store's work directory at run time, ``absolute`` (the simulator's) is used as is."""

    name: str
    key: dg.AssetKey
    relative: str | None = None
    absolute: Path | None = None

    def directory(self, store: DataStore) -> Path:
        return self.absolute if self.absolute is not None else store.asset_dir(self.relative or "")


def has_sensor_windows(plant: Plant) -> bool:
    return "sensor" in plant.modalities and plant.sensor is not None and plant.window >= MIN_WINDOW


def universal_sources(profile: Profile, simulator_corpus_dir: Path | None) -> list[Source]:
    sources = [Source(plant.name or profile.name, asset_key(plant.name, "sensor_corpus"),
                      relative=plant.path("sensor_corpus"))
               for plant in profile.plants if has_sensor_windows(plant)]
    # A profile's unnamed plant is the simulator itself: no second dependency on the same key.
    if simulator_corpus_dir is not None and all(s.key != SIMULATOR_KEY for s in sources):
        sources.append(Source(SIMULATOR_SOURCE, SIMULATOR_KEY, absolute=Path(simulator_corpus_dir)))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"universal backbone sources need distinct names: {names}")
    return sources


def source_family(name: str) -> str:
    """Plants of one benchmark share a name prefix (``cmapss_fd001`` .. ``cmapss_fd004``)."""
    return name.split("_")[0]


def sampling_weights(names: list[str], balance: str) -> dict[str, float]:
    if balance == "source":
        return {n: 1.0 for n in names}
    if balance == "family":
        counts = Counter(source_family(n) for n in names)
        return {n: 1.0 / counts[source_family(n)] for n in names}
    raise ValueError(f"unknown balance {balance!r}; expected 'family' or 'source'")


def load_sources(sources: list[Source], store: DataStore, log=None) -> tuple[dict, list[str]]:
    """The corpora that were published and hold windows; the names of the others."""
    corpora, missing = {}, []
    for source in sources:
        directory = source.directory(store)
        if versioned.pointer(directory) is None:
            missing.append(source.name)
            if log:
                log.warning(f"universal backbone: no {source.key.to_user_string()} corpus at {directory}; skipped")
            continue
        corpus = artifacts.load_corpus(directory)
        if corpus.inputs is None or len(corpus) == 0:
            missing.append(source.name)
            if log:
                log.warning(f"universal backbone: {source.key.to_user_string()} corpus is empty; skipped")
            continue
        corpora[source.name] = corpus
    return corpora, missing


def universal_backbone_assets(profile: Profile, simulator_corpus_dir: Path | None) -> list[dg.AssetsDefinition]:
    """``universal_sensor_backbone`` of ``profile`` (one asset), also pretrained on the simulator
    corpus at ``simulator_corpus_dir`` when given."""
    sources = universal_sources(profile, simulator_corpus_dir)
    if not sources:
        raise ValueError(f"profile {profile.name!r} has no sensor corpus to pretrain a universal backbone on")

    @dg.asset(
        key=UNIVERSAL_KEY,
        group_name="pretraining",
        kinds={"pytorch"},
        deps=[s.key for s in sources],
        retry_policy=RETRY,  # a retried step resumes from its checkpoint
        pool="gpu",  # `dagster instance concurrency set gpu 1` serialises training on one GPU
        description="One self-supervised sensor backbone for every plant: a channel-independent patch encoder "
                    "(RevIN per crop; long windows cut into native-rate crops, short ones resampled) pretrained "
                    f"on the univariate crops of {', '.join(f'`{s.key.to_user_string()}`' for s in sources)}, "
                    "each plant family equally likely per sample; safetensors + JSON config.",
    )
    def universal_sensor_backbone(context: dg.AssetExecutionContext, config: UniversalPretrainConfig,
                                  store: DataStore, compute: ComputeResource) -> dg.MaterializeResult:
        started = time.perf_counter()
        weights = sampling_weights([s.name for s in sources], config.balance)  # before any slow loading
        corpora, missing = load_sources(sources, store, context.log)
        if not corpora:
            # Not transient: retrying cannot make a corpus appear.
            raise dg.Failure(
                description="universal_sensor_backbone: none of its sensor corpora is materialized ("
                + ", ".join(f"{s.key.to_user_string()} at {s.directory(store)}" for s in sources)
                + "); materialize at least one first",
                metadata={"missing_sources": missing}, allow_retries=False)
        runtime = Runtime.from_settings(compute)
        steps = config.steps if config.steps is not None else max(2, round(universal.DEFAULT_STEPS * config.scale))
        out = store.asset_dir(UNIVERSAL_PATH)
        # Keyed by the root run: a step retry and a re-execution of a killed run ("from failure")
        # resume from the last checkpoint; a brand-new run starts fresh.
        ckpt = out / "checkpoints" / (context.run.root_run_id or context.run.run_id)
        backbone, result = universal.pretrain_universal(
            corpora, steps=steps, batch_size=config.batch_size or universal.DEFAULT_BATCH_SIZE,
            lr=config.lr or universal.DEFAULT_LR, seed=config.seed, runtime=runtime, checkpoint_dir=ckpt,
            checkpoint_every=config.checkpoint_every, source_weights={k: weights[k] for k in corpora})
        used = backbone.config["sources"]

        def write(folder: Path) -> dict:
            backbone.save(folder)
            atomic.write_json(folder / "pretraining.json", {
                "history": result.history, "steps": result.steps_done, "wall_s": result.wall_s,
                "sources": used, "missing": missing, "runtime": runtime.describe()})
            return {"final_loss": result.final_loss, "steps": result.steps_done, "sources": sorted(used)}

        version_dir = versioned.publish(out, write)  # readers see the old or the new backbone, never half
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        wall = time.perf_counter() - started
        crops = {name: info["crops"] for name, info in used.items()}
        first = float(result.history[0]) if result.history else float("nan")
        context.log.info(f"universal_sensor_backbone: {steps} steps on {crops} (missing: {missing or 'none'}), "
                         f"loss {first:.4f} -> {result.final_loss:.4f}, {wall:.1f}s")
        return dg.MaterializeResult(metadata={
            "sources": dg.MetadataValue.json(used),
            "crops_per_source": dg.MetadataValue.json(crops),
            "sampling_weights": dg.MetadataValue.json({k: info["weight"] for k, info in used.items()}),
            "n_sources": dg.MetadataValue.int(len(used)),
            "missing_sources": dg.MetadataValue.json(missing),
            "n_crops": dg.MetadataValue.int(sum(crops.values())),
            "steps": dg.MetadataValue.int(result.steps_done),
            "first_loss": dg.MetadataValue.float(first),
            "final_loss": dg.MetadataValue.float(float(result.final_loss)),
            "params": dg.MetadataValue.int(backbone.num_parameters()),
            "feature_dim_per_channel": dg.MetadataValue.int(backbone.feature_dim_for(1)),
            "wall_time_s": dg.MetadataValue.float(round(wall, 2)),
            "device": dg.MetadataValue.text(str(runtime.device)),
            "precision": dg.MetadataValue.text(runtime.precision),
            "loss_curve": dg.MetadataValue.md(loss_curve_markdown(result.history)),
            "path": dg.MetadataValue.path(str(version_dir)),
        })

    return [universal_sensor_backbone]
