"""Trained-model checkpoints: state dict + everything needed to rebuild the model, loaded safely."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from lotlip.io import atomic_path
from lotlip.model.factory import LoTLIP, create_model, get_tokenizer
from lotlip.model.tokenizer import CornerTokenizer


def save_model(path: str | Path, model: LoTLIP, model_name: str, corner_mask: bool, meta: dict) -> None:
    """Write a self-describing checkpoint atomically."""
    payload = {"state_dict": model.state_dict(), "model": model_name,
               "num_corner_tokens": model.num_corner_tokens, "corner_mask": corner_mask, "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: str | Path, device: str = "cpu") -> tuple[LoTLIP, CornerTokenizer, dict]:
    """Rebuild model + tokenizer from a checkpoint written by :func:`save_model` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL [\w.]+", str(exc))
        why = found.group(0) if found else "not a plain tensor/container pickle"
        raise ValueError(f"{path}: refused to load with weights_only=True ({why})") from None
    for key in ("state_dict", "model", "num_corner_tokens", "corner_mask"):
        if key not in payload:
            raise ValueError(f"{path}: not a lotlip checkpoint (field {key!r} missing)")
    model = create_model(payload["model"], num_corner_tokens=payload["num_corner_tokens"],
                         corner_mask=payload["corner_mask"])
    model.load_state_dict(payload["state_dict"], strict=True)
    tokenizer = get_tokenizer(payload["model"], num_corner_tokens=payload["num_corner_tokens"])
    return model.to(device).eval(), tokenizer, payload.get("meta", {})
