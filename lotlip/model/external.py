"""Public baselines evaluated as released, through open_clip: OpenAI CLIP and Long-CLIP (FACTS.md reference rows).

Weights are read with ``weights_only=True`` only:

- OpenAI CLIP (``kind: openclip``): a plain state dict in open_clip / OpenAI key layout (``visual.conv1.weight``,
  ``transformer.resblocks.*``, ``positional_embedding`` [77, W], ``text_projection``, ``logit_scale``), e.g.
  ``open_clip_model.safetensors`` of HF ``timm/vit_base_patch16_clip_224.openai``, through
  ``open_clip.create_model(arch, pretrained=<file>)``. OpenAI's original ``.pt`` files are TorchScript archives,
  which ``weights_only`` cannot read: they are refused with a pointer to the plain state dict. OpenAI weights
  need QuickGELU: use the ``-quickgelu`` open_clip names (``ViT-B-16-quickgelu``).
- Long-CLIP (``kind: longclip``; HF ``BeichenZhang/LongCLIP-B``, ``longclip-B.pt``). ASSUMED format, read from
  the Long-CLIP code: a plain OpenAI-layout CLIP state dict (possibly fp16) whose text positions are two
  [248, W] tables, ``positional_embedding`` and ``positional_embedding_res``; the model adds rows 0..19 of the
  first and rows 20..247 of the second (its ``mask1`` / ``mask2``, which are not saved). We merge them into one
  [248, W] ``positional_embedding`` and load the result strictly into open_clip's ``arch`` built with a 248-token
  text context. A state dict with a single 248-row table loads as is.

``arch`` is an open_clip model name or the path of an open_clip model-config JSON (registered under its stem).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import open_clip
import torch

from lotlip.model.release import load_error, read_checkpoint, release_state_dict, state_mismatch
from lotlip.model.text_tower import LONGCLIP_CONTEXT, LONGCLIP_KEEP

OPENAI_HINT = ("use the plain state dict instead: open_clip_model.safetensors (or open_clip_pytorch_model.bin) of "
               "HF timm/vit_base_patch16_clip_224.openai (B/16) or timm/vit_base_patch32_clip_224.openai (B/32)")


class OpenClipTokenizer:
    """open_clip's BPE tokenizer with the interface evaluation uses (``pad_id``, ``count_tokens``).

    Truncation keeps the end-of-text token last, as OpenAI's and Long-CLIP's ``tokenize(truncate=True)``. Ids are
    never trimmed: open_clip's CLIP adds its whole position table, so inputs keep the full context length.
    """

    trim_padding = False

    def __init__(self, arch: str, context_length: int | None = None):
        self._tok = open_clip.get_tokenizer(arch, context_length=context_length)
        self.context_length = self._tok.context_length
        self.pad_id = 0

    def __call__(self, texts: str | list[str]) -> torch.Tensor:
        """Token ids [N, context_length]."""
        return self._tok([texts] if isinstance(texts, str) else list(texts))

    def count_tokens(self, text: str) -> int:
        """Untruncated BPE token count (no start/end tokens)."""
        return len(self._tok.encode(text))


def open_clip_arch(arch: str) -> str:
    """The open_clip model name of ``arch``; a config JSON path is registered with open_clip first."""
    path = Path(arch)
    if path.suffix == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"{arch}: open_clip model config not found")
        open_clip.add_model_config(path)
        return path.stem
    if arch not in open_clip.list_models():
        raise ValueError(f"arch {arch!r}: not an open_clip model (nor a config JSON path)")
    return arch


def check_not_torchscript(path: Path) -> None:
    """Refuse a TorchScript archive (OpenAI's original ``.pt``): ``weights_only`` cannot read it safely."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if any(name.endswith("/constants.pkl") or "/code/" in name for name in zf.namelist()):
                raise ValueError(f"{path}: a TorchScript archive (OpenAI's original format) cannot be loaded with "
                                 f"weights_only=True; {OPENAI_HINT}")


def load_open_clip(arch: str, path: str | Path, context_length: int | None = None,
                   device: str = "cpu") -> tuple[torch.nn.Module, OpenClipTokenizer]:
    """An open_clip model with pretrained weights from a local file, and its tokenizer (``weights_only=True``)."""
    path = Path(path)
    check_not_torchscript(path)
    name = open_clip_arch(arch)
    try:
        model = open_clip.create_model(name, pretrained=str(path), force_context_length=context_length,
                                       weights_only=True, device=device)
    except (pickle.UnpicklingError, EOFError) as exc:  # refused by weights_only, or a damaged file
        raise load_error(path, exc) from None
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        raise ValueError(f"{path}: does not load into open_clip {name}: {' '.join(lines[:2])[:500]}") from None
    return model.eval(), OpenClipTokenizer(name, context_length)


def longclip_state_dict(payload: object, source: str, keep: int = LONGCLIP_KEEP) -> dict[str, torch.Tensor]:
    """Long-CLIP's published state dict in open_clip layout: one merged text position table, float32."""
    state = release_state_dict(payload, source)
    res = state.pop("positional_embedding_res", None)
    for name in ("mask1", "mask2"):
        state.pop(name, None)
    if "positional_embedding" not in state:
        raise ValueError(f"{source}: field 'positional_embedding' missing; not a CLIP state dict")
    if res is not None:
        pos = state["positional_embedding"]
        if res.shape != pos.shape:
            raise ValueError(f"{source}: positional_embedding {tuple(pos.shape)} and positional_embedding_res "
                             f"{tuple(res.shape)} differ in shape")
        state["positional_embedding"] = torch.cat([pos[:keep], res[keep:]])
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_longclip(arch: str, path: str | Path, context_length: int | None = None,
                  device: str = "cpu") -> tuple[torch.nn.Module, OpenClipTokenizer]:
    """Long-CLIP from its published checkpoint in open_clip ``arch`` with a 248-token text context."""
    path = Path(path)
    context = context_length or LONGCLIP_CONTEXT
    state = longclip_state_dict(read_checkpoint(path), str(path))
    name = open_clip_arch(arch)
    model = open_clip.create_model(name, force_context_length=context, weights_only=True)
    problems = state_mismatch(model, state)
    if problems:
        raise ValueError(f"{path}: Long-CLIP state dict does not match open_clip {name} (context {context}): "
                         f"{problems}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), OpenClipTokenizer(name, context)
