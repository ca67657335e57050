"""Torch-free constants and lookups shared by the model code, the config schema and the workflow planner
(``lotlip.config`` and ``lotlip.plan`` must not load torch)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

LONGCLIP_KEEP = 20  # Long-CLIP keeps the first 20 trained text positions ...
LONGCLIP_FACTOR = 4  # ... and stretches the other 57 four times
LONGCLIP_CONTEXT = 248  # 20 + (77 - 20) * 4

MODEL_KINDS = ("lotlip", "release", "openclip", "longclip")  # where an evaluated model comes from

MODEL_CONFIG_DIR = resources.files("lotlip") / "model_configs"


@dataclass(frozen=True)
class TableSpec:
    """Which benchmark kinds a results table collects and which metric columns it shows."""

    kinds: tuple[str, ...]
    metrics: tuple[str, ...]


# The results tables (lotlip.report.tables builds them; the config refuses paper tables of these names)
TABLES: dict[str, TableSpec] = {
    "long_retrieval": TableSpec(("long",), ("i2t_r1", "t2i_r1", "n_images")),
    "short_tasks": TableSpec(("short", "zeroshot"),
                             ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5", "top1", "top5", "n_images")),
}


def train_context_length(method: str, context_length: int | None) -> int | None:
    """Text context of a model trained with ``method``: Long-CLIP's 248 positions for ``longclip``, else the
    experiment's ``context_length`` (``None``: the model config's)."""
    return LONGCLIP_CONTEXT if method == "longclip" else context_length


def list_models() -> list[str]:
    """Names of the bundled model configs."""
    return sorted(p.name[: -len(".json")] for p in MODEL_CONFIG_DIR.iterdir() if p.name.endswith(".json"))


def find_model_config(name: str) -> Path | Traversable | None:
    """The JSON file of model config ``name`` (a bundled name or a path to a ``.json`` file), or ``None``."""
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return path
    bundled = MODEL_CONFIG_DIR / f"{name}.json"
    return bundled if bundled.is_file() else None


def get_model_config(name: str) -> dict:
    """The config dict of ``name`` (a bundled name or a path to a JSON file)."""
    found = find_model_config(name)
    if found is None:
        raise ValueError(f"model {name!r}: unknown (available: {', '.join(list_models())})")
    return json.loads(found.read_text())
