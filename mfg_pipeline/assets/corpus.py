"""Unlabeled pretraining corpora over a rolling window of cleaned partitions."""

import datetime as dt

import dagster as dg
import pandas as pd

from mfg_pipeline.assets.cleaning import CLEANED, cleaned_days
from mfg_pipeline.assets.keys import key
from mfg_pipeline.assets.metadata import numeric_stats, preview
from mfg_pipeline.datasets.corpus import build_image_corpus, build_sensor_corpus, build_text_corpus, corpus_from_dataset
from mfg_pipeline.profiles import Plant
from mfg_pipeline.resources import DataStore
from mfg_pipeline.storage.artifacts import Corpus, load_labeled_dataset, save_corpus

CORPUS = {"sensor": "sensor_corpus", "image": "image_corpus", "text": "text_corpus"}
KINDS = {"sensor": "pytorch", "image": "pytorch", "text": "pandas"}


class CorpusConfig(dg.Config):
    """The rolling window: the ``window_days`` days ending at ``end_day`` (default: the newest
    cleaned day), so retraining on a schedule sees recent data and memory stays bounded."""

    window_days: int = 30
    end_day: str | None = None


def window(days: list[str], config: CorpusConfig) -> list[str]:
    end = config.end_day or (days[-1] if days else None)
    if end is None:
        return []
    start = (dt.date.fromisoformat(end) - dt.timedelta(days=config.window_days - 1)).isoformat()
    return [d for d in days if start <= d <= end]


def _build(plant: Plant, modality: str, parts: list) -> tuple[Corpus, dict]:
    if modality == "sensor":
        corpus = build_sensor_corpus(parts, plant.channels, plant.window, plant.window_stride,
                                     max_gap_s=2.5 * plant.sample_period_s)
        flat = corpus.inputs.permute(1, 0, 2).reshape(len(plant.channels), -1).T.numpy()
        return corpus, {"window": plant.window, "stride": plant.window_stride,
                        "channel_stats": numeric_stats(pd.DataFrame(flat, columns=plant.channels), plant.channels)}
    if modality == "image":
        corpus = build_image_corpus(parts)
        return corpus, {"preview": preview(corpus.index)}
    corpus = build_text_corpus(parts)
    return corpus, {"preview": preview(corpus.index[["machine_id", "text"]])}


def _dataset_corpus_asset(plant: Plant, modality: str) -> dg.AssetsDefinition:
    @dg.asset(key=key(plant, CORPUS[modality]), group_name="corpus", deps=[key(plant, plant.corpus_from)],
              kinds={KINDS[modality]}, code_version="1",
              description=f"Unlabeled {modality} pretraining samples: the TRAIN split of `{plant.corpus_from}` "
                          "without its labels (test samples never reach pretraining).")
    def corpus_asset(store: DataStore) -> dg.MaterializeResult:
        dataset = load_labeled_dataset(store.asset_dir(plant.path(plant.corpus_from)))
        corpus = corpus_from_dataset(dataset)
        save_corpus(store.asset_dir(plant.path(CORPUS[modality])), corpus)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(corpus), "source": corpus.meta["source"],
            "excluded_test_samples": int((dataset.index["split"] != "train").sum()),
            "machines": int(corpus.index["machine_id"].nunique()) if len(corpus) else 0})

    return corpus_asset


def _corpus_asset(plant: Plant, modality: str) -> dg.AssetsDefinition:
    if plant.corpus_from:
        return _dataset_corpus_asset(plant, modality)
    cleaned = key(plant, CLEANED[modality])

    @dg.asset(key=key(plant, CORPUS[modality]), group_name="corpus",
              deps=[dg.AssetDep(cleaned, partition_mapping=dg.AllPartitionMapping())], kinds={KINDS[modality]},
              code_version="1", description=f"Unlabeled {modality} pretraining samples of the rolling window; labels never used.")
    def corpus_asset(context: dg.AssetExecutionContext, config: CorpusConfig, store: DataStore) -> dg.MaterializeResult:
        days = window(cleaned_days(context, cleaned), config)
        parts = [(d, store.asset_dir(plant.path(CLEANED[modality]), d)) for d in days]
        corpus, metadata = _build(plant, modality, parts)
        save_corpus(store.asset_dir(plant.path(CORPUS[modality])), corpus)
        machines = int(corpus.index["machine_id"].nunique()) if len(corpus) else 0
        return dg.MaterializeResult(metadata={"dagster/row_count": len(corpus), "days": dg.MetadataValue.json(days),
                                              "machines": machines, **metadata})

    return corpus_asset


def corpus_assets(plant: Plant) -> list[dg.AssetsDefinition]:
    return [_corpus_asset(plant, m) for m in plant.modalities]
