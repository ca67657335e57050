"""Stage ``shards``: webdataset shards of the training images and their captions, plus ``sizes.json``."""

from __future__ import annotations

import logging
from pathlib import Path

from lotlip.config import ShardsConfig

log = logging.getLogger(__name__)


def build_shards(cfg: ShardsConfig, world: Path, captions: Path, out: Path) -> dict[str, int]:
    """Write the shards of ``world`` + ``captions`` to ``out``; returns shard name -> sample count."""
    from lotlip.data.shards import write_shards

    counts = write_shards(world, captions, out, cfg.samples_per_shard)
    log.info("wrote %d shards, %d samples", len(counts), sum(counts.values()))
    return counts
