"""Write the synthetic world to disk: a training split and evaluation benchmarks (long, short, zero-shot)."""

from __future__ import annotations

import json
from pathlib import Path

from lotlip.config import BenchmarkConfig, WorldConfig
from lotlip.io import atomic_dir
from lotlip.world.captioners import STYLES, caption_scene
from lotlip.world.describe import ZERO_SHOT_TEMPLATES, annotator_text, iiw_text, raw_caption, short_captions
from lotlip.world.identifying import identifying_captions
from lotlip.world.render import render
from lotlip.world.scene import Scene, salient_classes, sample_group, sample_scene

MAX_REDRAWS = 20  # rounds of redrawing images whose short captions cannot identify them


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


def long_text(scene: Scene, style: str, seed: int) -> str:
    """The long text a benchmark of ``style`` pairs with ``scene``."""
    if style == "dci":
        return annotator_text(scene, seed)
    if style == "iiw":
        return iiw_text(scene, seed)
    if style in STYLES:  # texts written by an MLLM, errors included, as in ShareGPT4V-1k/-10k
        return caption_scene(scene, STYLES[style], seed + 7919)["long"]
    raise ValueError(f"benchmark style {style!r} is not one of dci, iiw, {', '.join(STYLES)}")


def benchmark_scenes(cfg: BenchmarkConfig, world: WorldConfig) -> list[tuple[int, Scene, list[str] | None]]:
    """(group, scene, short captions or None) of every image of a benchmark, in order.

    A short set with ``caption_facts`` > 0 gets captions that identify their image within the set; an image that
    cannot get ``captions_per_image`` of them is redrawn (same main object, key suffixed ``_r<round>``).
    """
    items = [(g, scene) for g in range(cfg.n_groups)
             for scene in sample_group(cfg.seed, g, cfg.group_size, world.min_objects, world.max_objects)]
    if cfg.kind != "short" or cfg.caption_facts == 0:
        return [(g, scene, None) for g, scene in items]
    for round_ in range(1, MAX_REDRAWS + 1):
        captions = identifying_captions([s for _, s in items], cfg.captions_per_image, cfg.caption_facts, cfg.seed)
        if all(captions[s.key] is not None for _, s in items):
            return [(g, s, captions[s.key]) for g, s in items]
        items = [(g, s) if captions[s.key] is not None else
                 (g, sample_scene(cfg.seed, f"{s.key.split('_r')[0]}_r{round_}", world.min_objects,
                                  world.max_objects, salient=(s.salient.colour, s.salient.shape)))
                 for g, s in items]
    raise ValueError(f"benchmark (short, seed {cfg.seed}): some images still lack {cfg.captions_per_image} "
                     f"identifying captions after {MAX_REDRAWS} redraws; lower captions_per_image or raise "
                     "caption_facts")


def _record(scene: Scene, group: int, cfg: BenchmarkConfig, captions: list[str] | None) -> dict:
    record = {"key": scene.key, "group": group, "scene": scene.to_dict()}
    if cfg.kind == "long":
        record["text"] = long_text(scene, cfg.style, cfg.seed)
    elif cfg.kind == "short":
        record["texts"] = captions or short_captions(scene, cfg.seed, cfg.captions_per_image)
    else:
        record["label"] = salient_classes().index((scene.salient.colour, scene.salient.shape))
    return record


def build_benchmark(cfg: BenchmarkConfig, world: WorldConfig, out_dir: str | Path) -> int:
    """An evaluation set: ``images/<key>.png``, ``texts.jsonl`` and ``meta.json`` (kind, style, classes)."""
    n = 0
    with atomic_dir(out_dir) as tmp:
        (tmp / "images").mkdir()
        with open(tmp / "texts.jsonl", "w", encoding="utf-8") as fh:
            for g, scene, captions in benchmark_scenes(cfg, world):
                render(scene, world.image_size).save(tmp / "images" / f"{scene.key}.png")
                fh.write(json.dumps(_record(scene, g, cfg, captions)) + "\n")
                n += 1
        meta = {"kind": cfg.kind, "style": cfg.style, "n_images": n}
        if cfg.kind == "zeroshot":
            meta["classes"] = [f"{c} {s}" for c, s in salient_classes()]
            meta["templates"] = list(ZERO_SHOT_TEMPLATES)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return n


def load_scenes(world_dir: str | Path) -> list[Scene]:
    """Scenes of a built training split."""
    from lotlip.io import read_jsonl

    return [Scene.from_dict(r["scene"]) for r in read_jsonl(Path(world_dir) / "scenes.jsonl")]
