import hashlib

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


# InstructBLIP and LLaVA captions computed before the ShareGPT4V long captions were lengthened (issue #21): those
# two styles must stay byte-identical.
BEFORE = {
    ("instructblip", 0): {"short": "a black triangle on a sky background", "long": "There is a large striped black "
                          "triangle. The image shows a purple circle. It is on a sky background."},
    ("llava", 0): {"short": "The image features a green triangle with other shapes around it", "long": "A large "
                   "striped green triangle appears in the left. In the right there is a small white square. The black "
                   "triangle is positioned to the left of the white square. The scene has a sky backdrop. Overall the "
                   "image contains 2 shapes."},
    ("instructblip", 1): {"short": "a yellow square on a sky background", "long": "The image shows a yellow square. "
                          "There is a small striped black triangle. There is a medium dotted purple cross. The yellow "
                          "square is below the black triangle. It is on a sky background."},
    ("llava", 1): {"short": "The image features a yellow square with other shapes around it", "long": "A large "
                   "striped yellow square appears in the bottom. In the right there is a small dotted red circle. In "
                   "the top there is a medium striped orange square. A small striped black triangle appears in the top "
                   "left. The yellow square is positioned below the black triangle. The scene has a sky backdrop. "
                   "Overall the image contains 4 shapes."},
}
BEFORE_SHA256 = "9f9084ee5809c186a37453e58e73a5e4d5e26eff72570fe7cdfedb1fbffe746c"  # 200 scenes, seed i


def test_instructblip_and_llava_captions_are_unchanged():
    for (name, i), caption in BEFORE.items():
        assert caption_scene(sample_scene(0, f"k{i}", 3, 5), STYLES[name], 0) == caption
    digest = hashlib.sha256()
    for i in range(200):
        scene = sample_scene(0, f"k{i}", 3, 5)
        for name in ("instructblip", "llava"):
            c = caption_scene(scene, STYLES[name], i)
            digest.update((c["short"] + "|" + c["long"] + "\n").encode())
    assert digest.hexdigest() == BEFORE_SHA256


def test_sharegpt4v_long_captions_state_texture_grid_and_scene():
    for i in range(30):
        scene = sample_scene(0, f"k{i}", 3, 5)
        sentences = split_sentences(caption_scene(scene, STYLES["sharegpt4v"], 0)["long"])
        assert scene.salient.texture in sentences[0] and "row" in sentences[0] and "column" in sentences[0]
        assert scene.background in sentences[-1] and "distinct shapes in total, namely" in sentences[-1]
        assert sum("apart" in s for s in sentences) >= 1  # relations say how many cells apart
        assert caption_scene(scene, STYLES["sharegpt4v"], 0) == caption_scene(scene, STYLES["sharegpt4v"], 0)
