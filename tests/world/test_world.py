import json
import re

from PIL import Image

from lotlip.config import BenchmarkConfig, WorldConfig
from lotlip.world import sample_group, sample_scene
from lotlip.world.build import build_benchmark, build_train_split
from lotlip.world.describe import annotator_text, raw_caption, scene_facts
from lotlip.world.render import render


def test_scenes_are_deterministic_by_seed_and_key():
    assert sample_scene(0, "a", 3, 5) == sample_scene(0, "a", 3, 5)
    assert sample_scene(0, "a", 3, 5) != sample_scene(1, "a", 3, 5)


def test_scene_has_one_large_salient_object_and_distinct_cells():
    for i in range(50):
        scene = sample_scene(0, f"k{i}", 3, 5)
        assert 3 <= len(scene.objects) <= 5
        assert sum(o.salient for o in scene.objects) == 1 and scene.salient.size == "large"
        assert len({o.cell for o in scene.objects}) == len(scene.objects)
        assert len({o.name for o in scene.objects}) == len(scene.objects)


def test_group_shares_the_salient_object_but_differs_in_details():
    group = sample_group(7, 0, 10, 3, 5)
    assert len({(s.salient.colour, s.salient.shape) for s in group}) == 1
    assert len({annotator_text(s, 7) for s in group}) == 10


def test_raw_caption_is_short_and_names_only_the_salient_object_mostly():
    hits = 0
    for i in range(200):
        scene = sample_scene(0, f"k{i}", 3, 5)
        cap = raw_caption(scene, 0)
        assert len(cap.split()) <= 5
        hits += scene.salient.colour in cap and scene.salient.shape in cap
    assert 150 <= hits < 200  # noisy, but mostly right


def test_annotator_text_states_one_fact_per_sentence():
    scene = sample_scene(0, "x", 5, 5)
    sentences = [s for s in re.split(r"\.", annotator_text(scene, 0)) if s.strip()]
    assert len(sentences) == len(scene_facts(scene))
    assert 8 <= len(sentences) <= 12


def test_render_size_and_background():
    scene = sample_scene(0, "x", 3, 3)
    img = render(scene, 48)
    assert img.size == (48, 48) and img.mode == "RGB"
    assert len(img.getcolors(maxcolors=100_000)) > 3  # objects drawn over the background


def test_built_train_split_and_benchmark_are_disjoint(tmp_path):
    build_train_split(WorldConfig(n_train=12), tmp_path / "train")
    build_benchmark(BenchmarkConfig(n_groups=2, group_size=3), WorldConfig(), tmp_path / "bench")
    train = [json.loads(line) for line in (tmp_path / "train" / "scenes.jsonl").read_text().splitlines()]
    bench = [json.loads(line) for line in (tmp_path / "bench" / "texts.jsonl").read_text().splitlines()]
    assert len(train) == 12 and len(bench) == 6
    assert not {r["key"] for r in train} & {r["key"] for r in bench}
    assert not {json.dumps(r["scene"]["objects"]) for r in train} & {json.dumps(r["scene"]["objects"]) for r in bench}
    png = Image.open(tmp_path / "train" / "images" / f"{train[0]['key']}.png")
    assert png.size == (32, 32)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no leftovers
