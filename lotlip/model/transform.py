"""Image preprocessing declared with the model (open_clip 3.x's ``PreprocessCfg`` / ``AugmentationCfg``).

A model config may hold a ``preprocess_cfg`` block with open_clip's ``PreprocessCfg`` keys (``mean``, ``std``,
``interpolation``, ``resize_mode``, ``fill_color``) and an ``aug_cfg`` block (``AugmentationCfg`` keys, e.g.
``scale``) for the train transform; the size is the tower's ``image_size``. Missing keys keep open_clip's defaults
(OpenAI mean/std, bicubic, shortest-side resize + centre crop). The release's timm towers: mean = std = 0.5,
train = ``RandomResizedCrop(224, scale (0.9, 1.0), bicubic)``, no flip (FACTS.md, training recipe as released).
:func:`image_transform` reads what the factory stored on ``model.visual`` (open_clip models carry theirs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from open_clip.model import get_model_preprocess_cfg, set_model_preprocess_cfg
from open_clip.transform import AugmentationCfg, PreprocessCfg, image_transform_v2, merge_preprocess_dict
from torch import nn

PREPROCESS_KEYS = tuple(f.name for f in fields(PreprocessCfg) if f.name != "size")
AUG_KEYS = tuple(f.name for f in fields(AugmentationCfg))
CHOICES = {"interpolation": ("bicubic", "bilinear"), "resize_mode": ("shortest", "longest", "squash"),
           "mode": ("RGB",)}


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def resolve_preprocess_cfg(block: Mapping[str, Any] | None, image_size: Any,
                           where: str = "preprocess_cfg") -> tuple[dict, dict | None]:
    """``(preprocess cfg, aug cfg or None)`` of a config's ``preprocess_cfg`` block: open_clip defaults + the block.

    Unknown keys or values are a ``ValueError`` naming ``where``.
    """
    block = dict(block or {})
    aug = block.pop("aug_cfg", None)
    unknown = sorted(set(block) - set(PREPROCESS_KEYS))
    if unknown:
        hint = " (the size is vision_cfg.image_size)" if "size" in unknown else ""
        raise ValueError(f"{where}: unknown key {unknown[0]!r}{hint} (known: {', '.join(PREPROCESS_KEYS)}, aug_cfg)")
    for key, allowed in CHOICES.items():
        if key in block and block[key] not in allowed:
            raise ValueError(f"{where}.{key}: {block[key]!r} is not one of {', '.join(allowed)}")
    cfg = merge_preprocess_dict(PreprocessCfg(), {k: _tuple(v) for k, v in block.items()})
    cfg["size"] = _tuple(image_size)
    if aug is None:
        return cfg, None
    if not isinstance(aug, Mapping):
        raise ValueError(f"{where}.aug_cfg: expected a mapping, got {type(aug).__name__}")
    unknown = sorted(set(aug) - set(AUG_KEYS))
    if unknown:
        raise ValueError(f"{where}.aug_cfg: unknown key {unknown[0]!r} (known: {', '.join(AUG_KEYS)})")
    return cfg, {k: _tuple(v) for k, v in aug.items()}


def set_preprocess(model: nn.Module, cfg: dict, aug_cfg: dict | None) -> None:
    """Store the resolved configs on ``model.visual`` (``preprocess_cfg`` as open_clip, plus ``aug_cfg``)."""
    set_model_preprocess_cfg(model, cfg)
    model.visual.aug_cfg = dict(aug_cfg) if aug_cfg is not None else None


def image_transform(model: nn.Module, is_train: bool) -> Callable:
    """PIL image -> normalised tensor [3, H, W] for ``model`` (a LoTLIP or open_clip model, DDP-wrapped or not).

    ``is_train`` uses the declared augmentation; a model that declares none trains on its eval transform.
    """
    model = getattr(model, "module", model)
    visual = getattr(model, "visual", model)
    cfg = PreprocessCfg(**merge_preprocess_dict(PreprocessCfg(), get_model_preprocess_cfg(model)))
    aug = getattr(visual, "aug_cfg", None)
    if is_train and aug is not None:
        return image_transform_v2(cfg, is_train=True, aug_cfg=AugmentationCfg(**aug))
    return image_transform_v2(cfg, is_train=False)

