"""Stage ``relabel``: long captions for every training image, from the configured backend."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

from lotlip.config import ConfigError, RelabelConfig, to_dict
from lotlip.io import write_jsonl

log = logging.getLogger(__name__)


def world_images(world: Path, backend: str) -> list:
    """What relabeling sees of the training images: scenes, or (img2dataset) objects with a row ``key``, which only
    the ``precomputed`` backend can caption."""
    from lotlip.data.img2dataset import image_keys, is_img2dataset_world
    from lotlip.world.build import load_scenes

    if is_img2dataset_world(world):
        if backend != "precomputed":
            raise ConfigError(f"relabel.backend: {backend!r} cannot caption {world} (img2dataset images, no scene "
                              "graphs); use precomputed")
        return [SimpleNamespace(key=key) for key in image_keys(world)]
    return load_scenes(world)


def backend_options(cfg: RelabelConfig, world: Path, out: Path) -> dict:
    """The keyword settings of ``cfg.backend``; ``hf`` resumes from per-captioner progress in ``<out>.work``."""
    if cfg.backend == "hf":
        return {**to_dict(cfg.hf), "images_dir": world / "images", "work_dir": out.with_name(out.name + ".work")}
    if cfg.backend == "precomputed":
        return to_dict(cfg.precomputed)
    return {}


def relabel(cfg: RelabelConfig, world: Path, out: Path) -> int:
    """Write one caption record per training image of ``world`` to ``out`` (JSONL); returns the record count."""
    from lotlip.relabel import relabel_scenes

    options = backend_options(cfg, world, out)
    images = world_images(world, cfg.backend)
    records = list(relabel_scenes(cfg.backend, images, cfg.captioners, cfg.seed, **options))
    write_jsonl(out, records)
    log.info("relabeled %d images with %s", len(records), ", ".join(cfg.captioners))
    return len(records)
