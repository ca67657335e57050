"""Model registry mirroring open_clip's API: JSON configs in ``lotlip/model_configs``.

A config holds open_clip's keys (``embed_dim``, ``vision_cfg``, ``text_cfg``) plus a ``lotlip`` block
(``text_tower``, ``num_corner_tokens``, ``corner_mask``). Vision towers and the CLIP wrapper are open_clip's;
only the text tower is ours.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import torch
from open_clip.model import CustomTextCLIP

from lotlip.model.text_tower import CornerTextTransformer
from lotlip.model.tokenizer import CornerTokenizer

_CONFIG_DIR = resources.files("lotlip") / "model_configs"


def list_models() -> list[str]:
    """Names of the bundled model configs."""
    return sorted(p.name[: -len(".json")] for p in _CONFIG_DIR.iterdir() if p.name.endswith(".json"))


def get_model_config(name: str) -> dict:
    """The config dict of ``name`` (a bundled name or a path to a JSON file)."""
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return json.loads(path.read_text())
    if name not in list_models():
        raise ValueError(f"model {name!r}: unknown (available: {', '.join(list_models())})")
    return json.loads((_CONFIG_DIR / f"{name}.json").read_text())


def _resolve(name: str, overrides: dict) -> dict:
    cfg = copy.deepcopy(get_model_config(name))
    block = cfg.setdefault("lotlip", {})
    block.update({k: v for k, v in overrides.items() if v is not None})
    if block.get("text_tower", "native") != "native":
        raise ValueError(f"model {name!r}: lotlip.text_tower {block['text_tower']!r} is not supported yet")
    return cfg


class LoTLIP(CustomTextCLIP):
    """open_clip ``CustomTextCLIP`` whose text tower carries corner tokens.

    ``encode_text`` returns the [CLS] feature only (inference); ``encode_text_all`` returns [CLS] and corner
    features [N, 1+K, D] (training).
    """

    def __init__(self, embed_dim: int, vision_cfg: dict, text_cfg: dict, num_corner_tokens: int = 0,
                 corner_mask: bool = True, eos_id: int = 49407, **kwargs):
        super().__init__(embed_dim, vision_cfg, {**text_cfg, "layers": 1}, **kwargs)
        self.text = CornerTextTransformer(num_corner_tokens=num_corner_tokens, corner_mask=corner_mask,
                                          output_dim=embed_dim, eos_id=eos_id, **text_cfg)
        self.num_corner_tokens = num_corner_tokens

    def encode_text_all(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        feats = self.text.forward_all(text)
        return torch.nn.functional.normalize(feats, dim=-1) if normalize else feats


def create_model(name: str, pretrained: str | None = None, *, num_corner_tokens: int | None = None,
                 corner_mask: bool | None = None, device: str | torch.device = "cpu") -> LoTLIP:
    """Build model ``name``; ``pretrained`` is a path to a state dict (loaded with ``weights_only=True``)."""
    cfg = _resolve(name, {"num_corner_tokens": num_corner_tokens, "corner_mask": corner_mask})
    block = cfg["lotlip"]
    model = LoTLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"],
                   num_corner_tokens=int(block.get("num_corner_tokens", 0)),
                   corner_mask=bool(block.get("corner_mask", True)))
    if pretrained:
        state = torch.load(pretrained, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(f"{pretrained}: state dict does not match model {name!r}: "
                             f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    return model.to(device)


def get_tokenizer(name: str, num_corner_tokens: int | None = None) -> CornerTokenizer:
    """The tokenizer matching model ``name`` (corner tokens included)."""
    cfg = _resolve(name, {"num_corner_tokens": num_corner_tokens})
    return CornerTokenizer(cfg["text_cfg"].get("context_length", 77),
                           int(cfg["lotlip"].get("num_corner_tokens", 0)))
