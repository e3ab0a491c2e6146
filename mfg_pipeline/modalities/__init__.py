"""Modalities: one backbone module each, registered in ``registry.MODALITIES``."""

from mfg_pipeline.modalities.base import Backbone, Inputs, num_samples, take
from mfg_pipeline.modalities.registry import MODALITIES, ModalitySpec, PretrainSettings, get_modality

__all__ = ["MODALITIES", "Backbone", "Inputs", "ModalitySpec", "PretrainSettings", "get_modality", "num_samples", "take"]
