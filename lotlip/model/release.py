"""Load the released LoTLIP ``model.pt`` (an open_clip ``CustomTextCLIP`` state dict) into our model.

Release keys: ``visual.trunk.*`` (timm tower), ``text.transformer.*`` (HF ``BertModel`` incl. pooler and the K
extra embedding rows), ``text.proj.weight``, ``logit_scale``. open_clip training checkpoints wrap them as
``{"state_dict": {"module.<key>": ...}, ...}``; both forms are accepted.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from torch import nn


def load_error(path: Path, exc: BaseException) -> ValueError:
    """One-line ``ValueError`` naming ``path`` for a failed ``torch.load``: a refused pickle or a damaged file."""
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL [\w.]+", text)
    detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    why = found.group(0) if found else detail.group(1).strip() if detail else ""
    if isinstance(exc, pickle.UnpicklingError) and not why.startswith("Unsupported operand"):  # operand: garbage
        return ValueError(f"{path}: refused to load with weights_only=True "
                          f"({why[:200] or 'not a plain tensor/container pickle'})")
    first = why or next((line.strip() for line in text.splitlines() if line.strip()), "no data")
    return ValueError(f"{path}: truncated or corrupt checkpoint ({type(exc).__name__}: {first[:200]})")


def read_checkpoint(path: Path) -> object:
    """``torch.load`` with ``weights_only=True``; a pickle that would run code or a damaged file is a ``ValueError``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError) as exc:
        raise load_error(path, exc) from None


def release_state_dict(payload: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensor state dict inside ``payload`` (plain or under ``"state_dict"``), without a ``module.`` prefix."""
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else payload
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source}: not a state dict of tensors (nor one under 'state_dict')")
    return {k.removeprefix("module."): v for k, v in state.items()}


def state_mismatch(model: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """A readable list of missing / unexpected keys and shape mismatches ('' when the state dict fits)."""
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in sorted(expected.keys() & state.keys()) if state[k].shape != expected[k].shape]
    parts = [f"{label} ({len(items)}): {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}"
             for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                  ("shape mismatches", shapes)) if items]
    return "; ".join(parts)


def load_release_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a release-format checkpoint into ``model`` strictly (``weights_only=True``); returns ``model``.

    Stale non-persistent buffers (``embeddings.position_ids`` saved by transformers < 4.31) are dropped.
    Raises ``ValueError`` naming missing / unexpected keys and shape mismatches.
    """
    path = Path(path)
    state = release_state_dict(read_checkpoint(path), str(path))
    persistent = model.state_dict().keys()
    stale = {name for name, _ in model.named_buffers()} - persistent
    state = {k: v for k, v in state.items() if k not in stale}
    problems = state_mismatch(model, state)
    if problems:
        raise ValueError(f"{path}: state dict does not match the model: {problems}")
    model.load_state_dict(state, strict=True)
    return model
