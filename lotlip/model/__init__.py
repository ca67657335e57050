"""LoTLIP model: corner-token text towers on open_clip, the multi-text and Long-CLIP losses, a model registry."""

from lotlip.model.factory import create_model, get_model_config, get_tokenizer, list_models
from lotlip.model.loss import LongClipLoss, MultiTextClipLoss

__all__ = ["create_model", "get_model_config", "get_tokenizer", "list_models", "LongClipLoss", "MultiTextClipLoss"]
