import pytest

from lotlip.data.subcaptions import split_sentences
from lotlip.relabel import relabel_scenes
from lotlip.world import sample_scene
from lotlip.world.captioners import STYLES, caption_scene
from lotlip.world.scene import COLOURS, SHAPES


def test_captioners_are_deterministic_and_distinct():
    scene = sample_scene(0, "k", 4, 4)
    a = {n: caption_scene(scene, s, 0) for n, s in STYLES.items()}
    b = {n: caption_scene(scene, s, 0) for n, s in STYLES.items()}
    assert a == b
    assert len({c["long"] for c in a.values()}) == len(STYLES)
    assert len({c["short"] for c in a.values()}) == len(STYLES)


def test_detail_levels_differ_between_styles():
    lengths = {n: 0 for n in STYLES}
    for i in range(100):
        scene = sample_scene(0, f"k{i}", 3, 5)
        for n, s in STYLES.items():
            lengths[n] += len(split_sentences(caption_scene(scene, s, 0)["long"]))
    assert lengths["instructblip"] < lengths["llava"] < lengths["sharegpt4v"]


def test_each_sentence_names_at_most_two_objects():
    names = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    for i in range(30):
        scene = sample_scene(0, f"k{i}", 3, 5)
        for style in STYLES.values():
            for sentence in split_sentences(caption_scene(scene, style, 0)["long"]):
                assert sum(name in sentence for name in names) <= 2  # an object fact or one relation


def test_relabel_backend_dispatch():
    scenes = [sample_scene(0, f"k{i}", 3, 4) for i in range(3)]
    records = list(relabel_scenes("simulated", scenes, ["llava", "sharegpt4v"], 0))
    assert [r["key"] for r in records] == ["k0", "k1", "k2"]
    assert set(records[0]["captions"]) == {"llava", "sharegpt4v"}
    with pytest.raises(ValueError, match="relabel.backend: 'hf-nope'"):
        list(relabel_scenes("hf-nope", scenes, ["llava"], 0))
