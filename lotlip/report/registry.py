"""Which tables exist and what they collect (import-light: the Snakefile reads it at parse time)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    """Which benchmark kinds a table collects and which metric columns it shows."""

    kinds: tuple[str, ...]
    metrics: tuple[str, ...]


TABLES: dict[str, TableSpec] = {
    "long_retrieval": TableSpec(("long",), ("i2t_r1", "t2i_r1", "n_images")),
    "short_tasks": TableSpec(("short", "zeroshot"),
                             ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5", "top1", "top5", "n_images")),
}
