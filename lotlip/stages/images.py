"""Stage ``images``: the training images (the synthetic world rendered, or an img2dataset download) and the
synthetic benchmarks."""

from __future__ import annotations

import logging
from pathlib import Path

from lotlip.config import ConfigError, LotlipConfig

log = logging.getLogger(__name__)


def build_images(cfg: LotlipConfig, out: Path) -> int:
    """Write the training images to ``out`` (synthetic scenes, or img2dataset shards); returns how many."""
    if cfg.world.source == "img2dataset":
        from lotlip.data.img2dataset import download_images

        sizes = download_images(cfg.world.img2dataset, cfg.world.img2dataset.url_list, out)
        log.info("downloaded %d images in %d img2dataset shards to %s", sum(sizes.values()), len(sizes), out)
        return sum(sizes.values())
    from lotlip.world.build import build_train_split

    n = build_train_split(cfg.world, out)
    log.info("wrote %d training scenes to %s", n, out)
    return n


def build_synthetic_benchmark(cfg: LotlipConfig, name: str, out: Path) -> int:
    """Write the synthetic benchmark ``name`` of ``cfg.benchmarks`` to ``out``; returns its image count."""
    from lotlip.world.build import build_benchmark

    if name not in cfg.benchmarks:
        raise ConfigError(f"benchmarks: no benchmark named {name!r}")
    n = build_benchmark(cfg.benchmarks[name], cfg.world, out)
    log.info("wrote benchmark %s (%d images) to %s", name, n, out)
    return n
