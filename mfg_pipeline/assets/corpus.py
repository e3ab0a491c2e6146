"""Unlabeled pretraining corpora over a rolling window of cleaned partitions."""


import datetime as dt

import dagster as dg
import pandas as pd

from mfg_pipeline.assets.cleaning import CLEANED, cleaned_days
from mfg_pipeline.assets.metadata import numeric_stats, preview
from mfg_pipeline.datasets.corpus import build_image_corpus, build_sensor_corpus, build_text_corpus
from mfg_pipeline.profiles import Profile
from mfg_pipeline.resources import DataStore
from mfg_pipeline.storage.artifacts import Corpus, save_corpus

CORPUS = {"sensor": "sensor_corpus", "image": "image_corpus", "text": "text_corpus"}


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


def _metadata(corpus: Corpus, days: list[str]) -> dict:
    return {"dagster/row_count": len(corpus), "days": dg.MetadataValue.json(days),
            "machines": int(corpus.index["machine_id"].nunique()) if len(corpus) else 0}


def corpus_assets(profile: Profile) -> list[dg.AssetsDefinition]:
    def deps(modality: str) -> list[dg.AssetDep]:
        return [dg.AssetDep(CLEANED[modality], partition_mapping=dg.AllPartitionMapping())]

    common = dict(group_name="corpus", code_version="1")
    channels = [c.name for c in profile.sensor.channels]

    def partitions(context, store: DataStore, modality: str, config: CorpusConfig):
        days = window(cleaned_days(context, CLEANED[modality]), config)
        return days, [(d, store.asset_dir(CLEANED[modality], d)) for d in days]

    @dg.asset(name=CORPUS["sensor"], deps=deps("sensor"), kinds={"pytorch"}, **common)
    def sensor_corpus(context: dg.AssetExecutionContext, config: CorpusConfig, store: DataStore) -> dg.MaterializeResult:
        """Sliding multichannel windows [N, C, L] of every machine, labels never used."""
        days, parts = partitions(context, store, "sensor", config)
        corpus = build_sensor_corpus(parts, channels, profile.window, profile.window_stride,
                                     max_gap_s=2.5 * profile.sample_period_s)
        save_corpus(store.asset_dir(CORPUS["sensor"]), corpus)
        stats = corpus.inputs.permute(1, 0, 2).reshape(len(channels), -1).T.numpy()
        return dg.MaterializeResult(metadata={**_metadata(corpus, days), "window": profile.window,
                                              "stride": profile.window_stride,
                                              "channel_stats": numeric_stats(pd.DataFrame(stats, columns=channels), channels)})

    @dg.asset(name=CORPUS["image"], deps=deps("image"), kinds={"pytorch"}, **common)
    def image_corpus(context: dg.AssetExecutionContext, config: CorpusConfig, store: DataStore) -> dg.MaterializeResult:
        """Every cleaned inspection image in the window, labeled or not, as uint8 [N, 1, S, S]."""
        days, parts = partitions(context, store, "image", config)
        corpus = build_image_corpus(parts)
        save_corpus(store.asset_dir(CORPUS["image"]), corpus)
        return dg.MaterializeResult(metadata={**_metadata(corpus, days), "preview": preview(corpus.index)})

    @dg.asset(name=CORPUS["text"], deps=deps("text"), kinds={"pandas"}, **common)
    def text_corpus(context: dg.AssetExecutionContext, config: CorpusConfig, store: DataStore) -> dg.MaterializeResult:
        """Every cleaned maintenance-log line in the window, labeled or not."""
        days, parts = partitions(context, store, "text", config)
        corpus = build_text_corpus(parts)
        save_corpus(store.asset_dir(CORPUS["text"]), corpus)
        return dg.MaterializeResult(metadata={**_metadata(corpus, days), "preview": preview(corpus.index[["machine_id", "text"]])})

    return [sensor_corpus, image_corpus, text_corpus]
