"""Load any evaluated model source as ``(model, tokenizer)``: our checkpoints, released LoTLIP weights, OpenAI CLIP
and Long-CLIP through open_clip (release-evaluation tier)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from lotlip.constants import MODEL_KINDS
from lotlip.model.checkpoint import load_model
from lotlip.model.factory import create_model, get_tokenizer

DEFAULT_ARCH = {"lotlip": "", "release": "lotlip_bert-ViT-B-16", "openclip": "ViT-B-16-quickgelu",
                "longclip": "ViT-B-16-quickgelu"}
FETCH_ONLY_KEYS = ("url", "sha256")  # model-source config keys that only the download step reads


@dataclass(frozen=True)
class ModelSpec:
    """Where an evaluated model comes from.

    ``kind``: ``lotlip`` (a checkpoint of ours; ``arch`` unused), ``release`` (a released LoTLIP ``model.pt``;
    ``arch`` a bundled lotlip model config such as ``lotlip_bert-ViT-B-16``), ``openclip`` (``arch`` an open_clip
    name or config JSON + a weights file, e.g. OpenAI CLIP) or ``longclip`` (Long-CLIP's checkpoint in open_clip
    ``arch``, 248-token context). ``arch`` ``""`` means the kind's default; ``context_length`` overrides the text
    context (``None``: the architecture's; Long-CLIP: 248).
    """

    kind: str
    path: str
    arch: str = ""
    context_length: int | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "model") -> ModelSpec:
        """Build from a config mapping; fetch-only keys (``url``, ``sha256``) are ignored, others rejected."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - set(FETCH_ONLY_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        for key in ("kind", "path"):
            if not data.get(key):
                raise ValueError(f"{where}: field {key!r} missing")
        return cls(**{k: v for k, v in data.items() if k in known})

    def resolved_arch(self) -> str:
        """``arch``, or the kind's default when empty."""
        return self.arch or DEFAULT_ARCH[self.kind]


def _load_release(spec: ModelSpec, device: str) -> tuple[torch.nn.Module, Any]:
    arch = spec.resolved_arch()
    model = create_model(arch, pretrained=spec.path, context_length=spec.context_length)
    return model.to(device).eval(), get_tokenizer(arch, context_length=spec.context_length)


def load_for_eval(spec: ModelSpec | Mapping[str, Any], device: str = "cpu") -> tuple[torch.nn.Module, Any]:
    """``(model in eval mode, tokenizer)`` for any model source; every load uses ``weights_only=True``.

    The tokenizer maps texts to ids [N, context_length] and has ``pad_id`` (what the runner needs).
    Raises ``ValueError`` naming the file and what does not fit; ``FileNotFoundError`` for a missing file.
    """
    from lotlip.model import external

    if not isinstance(spec, ModelSpec):
        spec = ModelSpec.from_mapping(spec)
    if spec.kind not in MODEL_KINDS:
        raise ValueError(f"model kind {spec.kind!r}: not one of {', '.join(MODEL_KINDS)}")
    if not Path(spec.path).is_file():
        raise FileNotFoundError(f"{spec.path}: {spec.kind} weights not found")
    if spec.kind == "lotlip":
        model, tokenizer, _ = load_model(spec.path, device=device)
        return model, tokenizer
    if spec.kind == "release":
        return _load_release(spec, device)
    loader = external.load_open_clip if spec.kind == "openclip" else external.load_longclip
    return loader(spec.resolved_arch(), spec.path, spec.context_length, device)
