"""Write the synthetic world to disk: a training split and long-text retrieval benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

from lotlip.config import BenchmarkConfig, WorldConfig
from lotlip.io import atomic_dir
from lotlip.world.describe import annotator_text, raw_caption
from lotlip.world.render import render
from lotlip.world.scene import Scene, sample_group, sample_scene


def build_train_split(cfg: WorldConfig, out_dir: str | Path) -> int:
    """``out_dir/images/<key>.png`` + ``out_dir/scenes.jsonl`` (scene graph + raw caption); returns count."""
    with atomic_dir(out_dir) as tmp:
        (tmp / "images").mkdir()
        with open(tmp / "scenes.jsonl", "w", encoding="utf-8") as fh:
            for i in range(cfg.n_train):
                scene = sample_scene(cfg.seed, f"t{i:07d}", cfg.min_objects, cfg.max_objects)
                render(scene, cfg.image_size).save(tmp / "images" / f"{scene.key}.png")
                fh.write(json.dumps({"key": scene.key, "raw": raw_caption(scene, cfg.seed),
                                     "scene": scene.to_dict()}) + "\n")
    return cfg.n_train


def build_long_benchmark(cfg: BenchmarkConfig, world: WorldConfig, out_dir: str | Path) -> int:
    """A long-text retrieval set: ``images/<key>.png`` + ``texts.jsonl`` (one long text per image)."""
    n = 0
    with atomic_dir(out_dir) as tmp:
        (tmp / "images").mkdir()
        with open(tmp / "texts.jsonl", "w", encoding="utf-8") as fh:
            for g in range(cfg.n_groups):
                for scene in sample_group(cfg.seed, g, cfg.group_size, world.min_objects, world.max_objects):
                    render(scene, world.image_size).save(tmp / "images" / f"{scene.key}.png")
                    fh.write(json.dumps({"key": scene.key, "group": g, "text": annotator_text(scene, cfg.seed),
                                         "scene": scene.to_dict()}) + "\n")
                    n += 1
    return n


def load_scenes(world_dir: str | Path) -> list[Scene]:
    """Scenes of a built training split."""
    from lotlip.io import read_jsonl

    return [Scene.from_dict(r["scene"]) for r in read_jsonl(Path(world_dir) / "scenes.jsonl")]
