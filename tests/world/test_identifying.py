"""Short benchmark captions that identify their image (issue #21 item 1) and the short sets' designed power."""

import json

import pytest

from lotlip.config import BenchmarkConfig, WorldConfig, load_config
from lotlip.report.intervals import wilson_interval
from lotlip.world.build import benchmark_scenes, build_benchmark
from lotlip.world.describe import short_captions
from lotlip.world.identifying import PREFIXES, ShortFact, caption_options, phrase
from lotlip.world.scene import Scene

WORLD = WorldConfig(seed=0, image_size=16, n_train=1, min_objects=3, max_objects=5)


def _texts(scene: Scene) -> set[str]:
    """Every caption whose facts all hold in ``scene`` (1-2 facts besides the main object)."""
    return {phrase(scene, combo, p) for combo in caption_options(scene, 2) for p in PREFIXES}


def _short(**kw) -> BenchmarkConfig:
    base = {"kind": "short", "n_groups": 80, "group_size": 1, "captions_per_image": 5, "caption_facts": 2,
            "seed": 4100}
    return BenchmarkConfig(**{**base, **kw})


def test_every_caption_is_true_of_its_image_and_of_no_other_image_in_the_set():
    items = benchmark_scenes(_short(), WORLD)
    assert len(items) == 80
    true_of = {s.key: _texts(s) for _, s, _ in items}
    for _, scene, captions in items:
        assert len(set(captions)) == 5
        for caption in captions:
            main = f"a large {scene.salient.colour} {scene.salient.shape}"
            assert main in caption or f" {scene.salient.texture} {scene.salient.colour}" in caption
            assert caption in true_of[scene.key]
            assert [k for k, texts in true_of.items() if caption in texts] == [scene.key]


def test_images_that_cannot_be_identified_are_redrawn_with_the_same_main_object():
    # one group of 20 images sharing their main object, one fact per caption: many need redrawing
    items = benchmark_scenes(_short(n_groups=1, group_size=20, caption_facts=1, captions_per_image=2), WORLD)
    redrawn = [s for _, s, _ in items if "_r" in s.key]
    assert redrawn, "this crowded set needs redraws"
    assert len({(s.salient.colour, s.salient.shape) for _, s, _ in items}) == 1
    for _, scene, captions in items:
        others = [s for _, s, _ in items if s is not scene]
        assert all(c in _texts(scene) and not any(c in _texts(o) for o in others) for c in captions)
    assert benchmark_scenes(_short(n_groups=1, group_size=20, caption_facts=1, captions_per_image=2),
                            WORLD) == items  # deterministic


def test_a_set_that_cannot_be_identified_is_a_clear_error():
    with pytest.raises(ValueError, match="identifying captions after 20 redraws"):
        benchmark_scenes(_short(n_groups=4, captions_per_image=20, caption_facts=1), WORLD)


def test_facts_hold_only_where_true():
    scene = benchmark_scenes(_short(n_groups=1), WORLD)[0][1]
    other = next(o for o in scene.objects if not o.salient)
    assert ShortFact("object", colour=other.colour, shape=other.shape).holds(scene)
    assert not ShortFact("object", colour=scene.salient.colour, shape=scene.salient.shape).holds(scene)
    assert ShortFact("background", scene.background).holds(scene)
    assert not ShortFact("background", "nowhere").holds(scene)
    with pytest.raises(ValueError, match="unknown kind"):
        ShortFact("colour").holds(scene)


def test_built_set_writes_the_identifying_captions(tmp_path):
    assert build_benchmark(_short(n_groups=12), WORLD, tmp_path / "coco") == 12
    records = [json.loads(line) for line in (tmp_path / "coco" / "texts.jsonl").read_text().splitlines()]
    expected = {s.key: c for _, s, c in benchmark_scenes(_short(n_groups=12), WORLD)}
    assert {r["key"]: r["texts"] for r in records} == expected
    assert len({t for r in records for t in r["texts"]}) == 60


def test_caption_facts_zero_keeps_the_former_main_object_only_captions(tmp_path):
    cfg = _short(n_groups=6, caption_facts=0, seed=4000)
    build_benchmark(cfg, WORLD, tmp_path / "old")
    records = [json.loads(line) for line in (tmp_path / "old" / "texts.jsonl").read_text().splitlines()]
    scenes = {s.key: s for _, s, captions in benchmark_scenes(cfg, WORLD) if captions is None}
    assert len(records) == len(scenes) == 6
    for r in records:
        assert r["texts"] == short_captions(scenes[r["key"]], 4000, 5)


def test_default_short_sets_have_the_designed_power():
    """The README's design: >= 500 short-retrieval images, >= 2,000 zero-shot images, one seed's 95% interval
    at most +-5 points at the worst case (50%); the former 40-image set is a secondary row."""
    cfg = load_config("config/config.yaml")
    coco, zs, old = cfg.benchmarks["coco_syn"], cfg.benchmarks["imagenet_syn"], cfg.benchmarks["coco_syn40"]
    for bench, minimum in ((coco, 500), (zs, 2000)):
        n = bench.n_groups * bench.group_size
        assert n >= minimum and bench.primary
        low, high = wilson_interval(50.0, n)
        assert (high - low) / 2 <= 5.0
    assert coco.caption_facts == 2 and not old.primary and old.caption_facts == 0
