"""Trained-model checkpoints: state dict + everything needed to rebuild the model, loaded safely.

Also the LiT-style image-tower initialisation (paper Table 2 baselines): copy only ``visual.*`` weights from a
checkpoint into a fresh model, and the text-tower initialisation (experiment ``text_init``). Loading any evaluated
model source lives in :mod:`lotlip.model.sources`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lotlip.io import WriteError, atomic_path
from lotlip.model.factory import LoTLIP, create_model, get_tokenizer
from lotlip.model.release import read_checkpoint, release_state_dict
from lotlip.model.timm_init import is_timm_vit_state_dict, key_problems, load_timm_state
from lotlip.model.tokenizer import CornerTokenizer

VISUAL_PREFIX = "visual."
TEXT_PREFIX = "text."


def save_model(path: str | Path, model: LoTLIP, model_name: str, corner_mask: bool, meta: dict) -> None:
    """Write a self-describing checkpoint atomically (register tokens and context length included)."""
    payload = {"state_dict": model.state_dict(), "model": model_name,
               "num_corner_tokens": model.num_corner_tokens, "corner_mask": corner_mask,
               "num_register_tokens": model.num_register_tokens, "context_length": model.context_length,
               "meta": meta}
    save_checkpoint(payload, path)


def save_checkpoint(obj: Any, path: str | Path) -> None:
    """``torch.save`` through a temp file renamed into place (fsynced, see :func:`lotlip.io.publish`); a failed
    write (full disk, quota) is a :class:`lotlip.io.WriteError` naming ``path`` and the cause (torch's own error
    names neither)."""
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as fh:  # a file object: torch keeps the OSError of a failed write as the context
                torch.save(obj, fh)
        except (RuntimeError, OSError) as exc:
            cause = exc
            while cause is not None and not isinstance(cause, OSError):
                cause = cause.__context__
            why = cause.strerror or str(cause) if cause is not None else str(exc).strip().splitlines()[0]
            raise WriteError(getattr(cause, "errno", None), why, str(path)) from None


def load_model(path: str | Path, device: str = "cpu") -> tuple[LoTLIP, CornerTokenizer, dict]:
    """Rebuild model + tokenizer from a checkpoint written by :func:`save_model` (``weights_only=True``)."""
    path = Path(path)
    payload = read_checkpoint(path)
    for key in ("state_dict", "model", "num_corner_tokens", "corner_mask"):
        if not isinstance(payload, dict) or key not in payload:
            raise ValueError(f"{path}: not a lotlip checkpoint (field {key!r} missing)")
    registers, context = payload.get("num_register_tokens", 0), payload.get("context_length")
    model = create_model(payload["model"], num_corner_tokens=payload["num_corner_tokens"],
                         corner_mask=payload["corner_mask"], num_register_tokens=registers, context_length=context,
                         vision_checkpoint="")  # every weight comes from the checkpoint
    model.load_state_dict(payload["state_dict"], strict=True)
    tokenizer = get_tokenizer(payload["model"], num_corner_tokens=payload["num_corner_tokens"],
                              num_register_tokens=registers, context_length=context)
    return model.to(device).eval(), tokenizer, payload.get("meta", {})


def load_image_tower(model: LoTLIP, path: str | Path) -> LoTLIP:
    """Copy the ``visual.*`` weights of a lotlip (or release-format) checkpoint into ``model``; returns ``model``.

    Strict on the visual keys: every model ``visual.*`` tensor must be present with the same shape, and no extra
    ``visual.*`` key may appear. Text weights and the logit scale are left untouched. A timm ViT state dict (timm's
    layout: no ``visual.`` key, ``pos_embed`` / ``patch_embed.proj.weight`` / ``blocks.*`` at top level, e.g. the
    ImageNet-21k ``pytorch_model.bin``) initialises the timm trunk instead, classifier dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment.image_init {path}: checkpoint not found")
    state = release_state_dict(read_checkpoint(path), str(path))
    if is_timm_vit_state_dict(state) and not any(k.startswith(VISUAL_PREFIX) for k in state):
        load_timm_state(model.visual, state, path, label="experiment.image_init")
        return model
    found = {k: v for k, v in state.items() if k.startswith(VISUAL_PREFIX)}
    expected = {k: v for k, v in model.state_dict().items() if k.startswith(VISUAL_PREFIX)}
    problems = key_problems(expected, found)
    if problems:
        raise ValueError(f"experiment.image_init {path}: image tower does not match the model: "
                         f"{'; '.join(problems)}")
    model.visual.load_state_dict({k[len(VISUAL_PREFIX):]: v for k, v in found.items()}, strict=True)
    return model


def load_text_tower(model: LoTLIP, path: str | Path) -> list[str]:
    """Copy the ``text.*`` weights of a lotlip checkpoint into ``model`` (experiment ``text_init``).

    Tensors of the same name and shape are copied; a table that grew (corner or register tokens added to the
    vocabulary, a longer token limit) gets the checkpoint's rows and keeps its new ones. Returns the model's text keys
    left at their initialisation (e.g. corner-token parameters the source run did not have). Any other shape
    mismatch is an error naming the tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment.text_init {path}: checkpoint not found")
    state = release_state_dict(read_checkpoint(path), str(path))
    own = {k: v for k, v in model.state_dict().items() if k.startswith(TEXT_PREFIX)}
    found = {k: v for k, v in state.items() if k.startswith(TEXT_PREFIX)}
    bad = [f"{k}: checkpoint {tuple(found[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
           if k in found and found[k].shape != v.shape
           and not (v.ndim >= 2 and found[k].shape[1:] == v.shape[1:] and found[k].shape[0] < v.shape[0])]
    if bad:
        raise ValueError(f"experiment.text_init {path}: text tower does not match the model: {'; '.join(bad[:5])}")
    with torch.no_grad():
        for key, value in own.items():
            if key in found:
                value[: found[key].shape[0]].copy_(found[key])
    return sorted(own.keys() - found.keys())
