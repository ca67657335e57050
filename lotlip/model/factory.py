"""Model registry mirroring open_clip's API: JSON configs in ``lotlip/model_configs``.

A config holds open_clip's keys (``embed_dim``, ``vision_cfg``, ``text_cfg``) plus a ``lotlip`` block
(``text_tower``, ``num_corner_tokens``, ``corner_mask``, ``num_register_tokens``). Vision towers and the CLIP
wrapper are open_clip's; only the text tower is ours. ``context_length`` overrides ``text_cfg.context_length``
(Long-CLIP's 248); a BERT tower built from ``hf_config`` grows ``max_position_embeddings`` to fit it. A BERT tower
with ``hf_pretrained`` loads a pip-packaged pretrained model offline (:mod:`lotlip.model.packaged`).

Two more keys, as the release: ``vision_cfg.checkpoint_path`` (timm's ViT weights file, e.g. the ImageNet-21k
``pytorch_model.bin``, loaded into the timm trunk, classifier dropped; see :mod:`lotlip.model.timm_init`) and a
top-level ``preprocess_cfg`` (open_clip's ``PreprocessCfg`` keys + ``aug_cfg``; see :mod:`lotlip.model.transform`),
stored on ``model.visual`` for :func:`lotlip.model.transform.image_transform`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from open_clip.model import CustomTextCLIP

from lotlip.constants import get_model_config as get_model_config  # re-exported (defined torch-free)
from lotlip.constants import list_models as list_models  # re-exported
from lotlip.model.hf_text_tower import build_hf_text_tower
from lotlip.model.hf_tokenizer import BertCornerTokenizer, build_hf_tokenizer
from lotlip.model.release import load_release_checkpoint
from lotlip.model.text_tower import LONGCLIP_FACTOR, LONGCLIP_KEEP, CornerTextTransformer
from lotlip.model.timm_init import load_timm_checkpoint
from lotlip.model.tokenizer import CornerTokenizer
from lotlip.model.transform import resolve_preprocess_cfg, set_preprocess

TEXT_TOWERS = ("native", "hf_bert")


def _set_context(cfg: dict, context_length: int) -> None:
    """Override the text context; a fresh BERT (``hf_config``) gets enough position rows for it (a pretrained
    one, ``hf_pretrained``, keeps its trained rows: the tower rejects a context beyond them)."""
    text_cfg = cfg["text_cfg"]
    text_cfg["context_length"] = context_length
    hf_config = text_cfg.get("hf_config")
    fresh = hf_config is not None and not text_cfg.get("hf_pretrained")
    if fresh and hf_config.get("max_position_embeddings", 512) < context_length:
        hf_config["max_position_embeddings"] = context_length


def _resolve(name: str, overrides: dict, context_length: int | None = None) -> dict:
    cfg = copy.deepcopy(get_model_config(name))
    block = cfg.setdefault("lotlip", {})
    block.update({k: v for k, v in overrides.items() if v is not None})
    if block.get("text_tower", "native") not in TEXT_TOWERS:
        raise ValueError(f"model {name!r}: lotlip.text_tower {block['text_tower']!r} is not one of "
                         f"{', '.join(TEXT_TOWERS)}")
    if context_length is not None:
        _set_context(cfg, context_length)
    return cfg


class LoTLIP(CustomTextCLIP):
    """open_clip ``CustomTextCLIP`` whose text tower carries corner (and optional register) tokens.

    ``encode_text`` returns the [CLS] feature only (inference); ``encode_text_all`` returns [CLS] and corner
    features [N, 1+K, D] (training); register outputs are never returned. State-dict keys match open_clip's,
    so released checkpoints load.
    """

    def __init__(self, embed_dim: int, vision_cfg: dict, text_cfg: dict, num_corner_tokens: int = 0,
                 corner_mask: bool = True, text_tower: str = "native", eos_id: int = 49407,
                 num_register_tokens: int = 0, **kwargs):
        # open_clip builds a throwaway text tower here (its text config rejects our keys and an HF name would
        # reach for the hub); ours replaces it right after.
        stub = {"context_length": 8, "vocab_size": 8, "width": 8, "heads": 1, "layers": 1}
        super().__init__(embed_dim, vision_cfg, stub, **kwargs)
        if text_tower == "hf_bert":
            self.text = build_hf_text_tower(text_cfg, embed_dim, num_corner_tokens, corner_mask, num_register_tokens)
        else:
            self.text = CornerTextTransformer(num_corner_tokens=num_corner_tokens, corner_mask=corner_mask,
                                              num_register_tokens=num_register_tokens, output_dim=embed_dim,
                                              eos_id=eos_id, **text_cfg)
        self.context_length, self.vocab_size = self.text.context_length, self.text.vocab_size
        self.num_corner_tokens = num_corner_tokens
        self.num_register_tokens = num_register_tokens

    def encode_text_all(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """[CLS] and corner features [N, 1+K, D] (training)."""
        feats = self.text.forward_all(text)
        return torch.nn.functional.normalize(feats, dim=-1) if normalize else feats

    def stretch_text_context(self, keep: int = LONGCLIP_KEEP, factor: int = LONGCLIP_FACTOR) -> None:
        """Long-CLIP's positional stretch (77 -> 248) of a native tower with trained positions.

        Replaces the positional-embedding parameter: call it before building the optimizer.
        """
        if not isinstance(self.text, CornerTextTransformer):
            raise ValueError(f"stretch_text_context: needs the native text tower, not {type(self.text).__name__}")
        self.text.stretch_context(keep, factor)
        self.context_length = self.text.context_length


def _vision_checkpoint(name: str, vision_cfg: dict, pretrained: str | None,
                       vision_checkpoint: str | Path | None) -> str | None:
    """The timm weights file to initialise the vision trunk from (popped from ``vision_cfg``), or ``None``."""
    from_config = vision_cfg.pop("checkpoint_path", None)
    if vision_checkpoint is not None:
        if vision_checkpoint and pretrained:
            raise ValueError(f"model {name!r}: give pretrained (whole model) or vision_checkpoint, not both")
        path = str(vision_checkpoint) or None
    else:
        path = None if pretrained else from_config  # whole-model weights replace the trunk's anyway
    if path and vision_cfg.get("timm_model_pretrained"):
        raise ValueError(f"model {name!r}: vision_cfg.timm_model_pretrained and a checkpoint_path both initialise "
                         f"the timm tower; set timm_model_pretrained to false")
    if path and not vision_cfg.get("timm_model_name"):
        raise ValueError(f"model {name!r}: vision_cfg.checkpoint_path {path} needs a timm tower "
                         f"(vision_cfg.timm_model_name)")
    return path


def create_model(name: str, pretrained: str | None = None, *, num_corner_tokens: int | None = None,
                 corner_mask: bool | None = None, num_register_tokens: int | None = None,
                 context_length: int | None = None, vision_checkpoint: str | Path | None = None,
                 device: str | torch.device = "cpu") -> LoTLIP:
    """Build model ``name``; ``pretrained`` is a path to a state dict (loaded with ``weights_only=True``).

    ``None`` keeps the config's value; ``context_length`` overrides ``text_cfg.context_length``;
    ``vision_checkpoint`` overrides ``vision_cfg.checkpoint_path`` (``""``: none). A config's checkpoint path is
    skipped when ``pretrained`` replaces every weight.
    """
    cfg = _resolve(name, {"num_corner_tokens": num_corner_tokens, "corner_mask": corner_mask,
                          "num_register_tokens": num_register_tokens}, context_length)
    block = cfg["lotlip"]
    vision_path = _vision_checkpoint(name, cfg["vision_cfg"], pretrained, vision_checkpoint)
    image_size = cfg["vision_cfg"].get("image_size", 224)
    preprocess, aug = resolve_preprocess_cfg(cfg.get("preprocess_cfg"), image_size, f"model {name!r}: preprocess_cfg")
    model = LoTLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"],
                   num_corner_tokens=int(block.get("num_corner_tokens", 0)),
                   corner_mask=bool(block.get("corner_mask", True)),
                   text_tower=block.get("text_tower", "native"),
                   num_register_tokens=int(block.get("num_register_tokens", 0)))
    preprocess["size"] = model.visual.image_size  # the tower's, as open_clip
    set_preprocess(model, preprocess, aug)
    if vision_path:
        load_timm_checkpoint(model.visual, vision_path)
    if pretrained:
        load_release_checkpoint(model, pretrained)
    return model.to(device)


def get_tokenizer(name: str, num_corner_tokens: int | None = None, num_register_tokens: int | None = None,
                  context_length: int | None = None) -> CornerTokenizer | BertCornerTokenizer:
    """The tokenizer matching model ``name`` (corner and register tokens included)."""
    cfg = _resolve(name, {"num_corner_tokens": num_corner_tokens, "num_register_tokens": num_register_tokens},
                   context_length)
    block = cfg["lotlip"]
    corners, registers = int(block.get("num_corner_tokens", 0)), int(block.get("num_register_tokens", 0))
    if block.get("text_tower") == "hf_bert":
        return build_hf_tokenizer(cfg["text_cfg"], corners, registers)
    return CornerTokenizer(cfg["text_cfg"].get("context_length", 77), corners, registers)
