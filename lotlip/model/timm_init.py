"""Initialise a timm vision tower from a plain timm ViT state dict (the release's ImageNet-21k ``pytorch_model.bin``).

The released configs carry ``vision_cfg.checkpoint_path``: timm's hub file for ``vit_base_patch16_224.augreg_in21k``
(keys ``cls_token``, ``pos_embed``, ``patch_embed.proj.weight``, ``blocks.N.*``, ``norm.*`` and the 21k-class
classifier ``head.*``; old in21k files also ``pre_logits.*``). It is read with ``weights_only=True`` into
``model.visual.trunk`` (open_clip's ``TimmModel``); the classifier is dropped, every other key must match by name
and shape. open_clip's ``pretrained_image_path`` loads non-strictly and logs errors; timm's ``load_checkpoint``
resamples mismatched position tables and raises multi-line errors: hence this small loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from lotlip.model.release import read_checkpoint, release_state_dict

VIT_ANCHORS = ("pos_embed", "patch_embed.proj.weight")  # keys every timm ViT state dict has
DROPPED_PREFIXES = ("pre_logits.",)  # old in21k representation layer; timm >= 0.9 ViTs have none


def is_timm_vit_state_dict(state: Mapping[str, object]) -> bool:
    """Whether ``state`` has timm's ViT layout: the ViT anchor keys at top level (no ``visual.`` prefix)."""
    return all(key in state for key in VIT_ANCHORS) and any(key.startswith("blocks.") for key in state)


def key_problems(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> list[str]:
    """Missing keys, unexpected keys and shape mismatches, each ``label (count): first 10 ...`` ([] when they fit)."""
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found.keys() - expected.keys())
    shapes = [f"{k}: checkpoint {tuple(found[k].shape)} vs model {tuple(v.shape)}"
              for k, v in sorted(expected.items()) if k in found and found[k].shape != v.shape]
    return [f"{label} ({len(items)}): {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}"
            for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                 ("shape mismatches", shapes)) if items]


def _classifier_prefixes(trunk: nn.Module) -> tuple[str, ...]:
    """Prefixes of the timm model's classifier (its pretrained cfg's ``classifier``, e.g. ``head``)."""
    cfg = getattr(trunk, "pretrained_cfg", None) or {}
    names = cfg.get("classifier") or "head"
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(f"{name}." for name in names) + DROPPED_PREFIXES


def timm_trunk(visual: nn.Module, label: str, path: Path) -> nn.Module:
    """The timm model inside open_clip's ``TimmModel`` (``visual.trunk``); an error naming ``path`` otherwise."""
    trunk = getattr(visual, "trunk", None)
    if trunk is None or not hasattr(trunk, "pretrained_cfg"):
        raise ValueError(f"{label} {path}: a timm ViT state dict initialises a timm vision tower "
                         f"(vision_cfg.timm_model_name), not open_clip's {type(visual).__name__}")
    return trunk


def timm_vit_state(payload: object, label: str, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a timm ViT file (``module.`` prefix removed); ``ValueError`` naming ``path`` if it is not one."""
    state = release_state_dict(payload, f"{label} {path}")
    if not is_timm_vit_state_dict(state):
        keys = sorted(state)
        shown = ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")
        raise ValueError(f"{label} {path}: not a timm ViT state dict (expected top-level keys "
                         f"{', '.join(VIT_ANCHORS)}, blocks.*; found {len(keys)} keys: {shown or 'none'})")
    return state


def load_timm_state(visual: nn.Module, state: Mapping[str, torch.Tensor], path: Path,
                    label: str = "vision_cfg.checkpoint_path") -> list[str]:
    """Copy a timm ViT ``state`` into ``visual.trunk`` strictly, classifier excluded; returns the dropped keys.

    The trunk's own classifier (a projection when open_clip kept one) keeps its initialisation.
    """
    trunk = timm_trunk(visual, label, path)
    prefixes = _classifier_prefixes(trunk)
    own = trunk.state_dict()
    dropped = sorted(k for k in state if k.startswith(prefixes))
    found = {k: v for k, v in state.items() if not k.startswith(prefixes)}
    expected = {k: v for k, v in own.items() if not k.startswith(prefixes)}
    problems = key_problems(expected, found)
    if problems:
        name = getattr(trunk, "pretrained_cfg", {}).get("architecture", type(trunk).__name__)
        raise ValueError(f"{label} {path}: does not match the timm tower {name}: {'; '.join(problems)}")
    trunk.load_state_dict({**found, **{k: v for k, v in own.items() if k.startswith(prefixes)}}, strict=True)
    return dropped


def load_timm_checkpoint(visual: nn.Module, path: str | Path, label: str = "vision_cfg.checkpoint_path") -> list[str]:
    """Load timm's ViT weights file ``path`` into ``visual.trunk`` (``weights_only=True``); returns the dropped keys.

    Errors are one line naming ``label`` and ``path``: ``FileNotFoundError`` for a missing file, ``ValueError`` for
    a refused pickle, a file that is not a timm ViT state dict, or keys / shapes that do not match the tower.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{label} {path}: timm weights file not found")
    timm_trunk(visual, label, path)
    try:
        payload = read_checkpoint(path)
    except ValueError as exc:
        raise ValueError(f"{label} {exc}") from None
    return load_timm_state(visual, timm_vit_state(payload, label, path), path, label)
