"""LoTLIP model: corner-token text towers on open_clip, the multi-text loss, a model registry."""

from lotlip.model.factory import create_model, get_model_config, get_tokenizer, list_models
from lotlip.model.loss import MultiTextClipLoss

__all__ = ["create_model", "get_model_config", "get_tokenizer", "list_models", "MultiTextClipLoss"]
