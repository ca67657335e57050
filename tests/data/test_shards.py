import json

import pytest
import webdataset as wds

from lotlip.data.shards import ShardError, shard_urls, write_shards
from lotlip.io import read_jsonl, write_jsonl


def test_shards_hold_every_sample_and_sizes_json(tiny_world):
    world, _, shards = tiny_world
    sizes = json.loads((shards / "sizes.json").read_text())
    assert sizes == {"train-000000.tar": 40, "train-000001.tar": 40, "train-000002.tar": 16}
    samples = list(wds.WebDataset(shard_urls(shards), shardshuffle=False))
    keys = [s["__key__"] for s in samples]
    assert keys == [r["key"] for r in read_jsonl(world / "scenes.jsonl")]
    meta = json.loads(samples[0]["json"])
    assert {"raw", "captions", "scene"} <= set(meta) and samples[0]["png"][:4] == b"\x89PNG"


def test_missing_captions_name_the_file(tiny_world, tmp_path):
    world, captions, _ = tiny_world
    partial = tmp_path / "partial.jsonl"
    write_jsonl(partial, read_jsonl(captions)[:10])
    with pytest.raises(ShardError, match="partial.jsonl: no captions for 86 images"):
        write_shards(world, partial, tmp_path / "out", 40)
    assert not (tmp_path / "out").exists()


def test_unbuilt_shards_give_the_command_to_build_them(tmp_path):
    with pytest.raises(ShardError, match="sizes.json: not found; build the shards first"):
        shard_urls(tmp_path)


def test_shards_are_byte_reproducible_with_one_header_per_member(tiny_world, tmp_path):
    import tarfile
    world, captions, shards = tiny_world
    again = write_shards(world, captions, tmp_path / "again", 40)
    assert sorted(again) == sorted(json.loads((shards / "sizes.json").read_text()))
    for name in again:
        assert (tmp_path / "again" / name).read_bytes() == (shards / name).read_bytes(), name
    with tarfile.open(shards / "train-000000.tar") as tf:
        members = tf.getmembers()
    assert all(m.mtime == 0 and not m.pax_headers for m in members)


def _mispaired(tiny_cfg, tiny_world) -> list[str]:
    """Every way a shard sample's parts disagree with its scene: [] when each caption belongs to its image."""
    import io

    import numpy as np
    from PIL import Image

    from lotlip.relabel import relabel_scenes
    from lotlip.world.describe import raw_caption
    from lotlip.world.render import render
    from lotlip.world.scene import Scene

    _, _, shards = tiny_world
    problems = []
    for sample in wds.WebDataset(shard_urls(shards), shardshuffle=False):
        key, meta = sample["__key__"], json.loads(sample["json"])
        scene = Scene.from_dict(meta["scene"])
        if scene.key != key:
            problems.append(f"{key}: json holds scene {scene.key}")
        pixels = np.asarray(Image.open(io.BytesIO(sample["png"])).convert("RGB"))
        if not np.array_equal(pixels, np.asarray(render(scene, tiny_cfg.world.image_size).convert("RGB"))):
            problems.append(f"{key}: image is not a render of scene {scene.key}")
        if meta["raw"] != raw_caption(scene, tiny_cfg.world.seed):
            problems.append(f"{key}: raw caption is not scene {scene.key}'s")
        expected = next(relabel_scenes("simulated", [scene], tiny_cfg.relabel.captioners, tiny_cfg.relabel.seed))
        if meta["captions"] != expected["captions"]:
            problems.append(f"{key}: MLLM captions are not scene {scene.key}'s")
    return problems


def test_each_sample_caption_belongs_to_its_image(tiny_cfg, tiny_world):
    """Image, scene, raw and MLLM captions of every shard sample describe the same scene (ids and content)."""
    assert _mispaired(tiny_cfg, tiny_world) == []


@pytest.mark.parametrize("fault", ["captions", "images"])
def test_mispaired_shards_are_caught(tiny_cfg, tiny_world, tmp_path, fault):
    """The pairing check above bites: captions or images shifted by one sample are reported for every sample."""
    import shutil

    world, captions, _ = tiny_world
    if fault == "captions":
        rows = read_jsonl(captions)
        shifted = [{**row, "captions": rows[i - 1]["captions"]} for i, row in enumerate(rows)]
        write_jsonl(tmp_path / "captions.jsonl", shifted)
        captions = tmp_path / "captions.jsonl"
    else:
        shutil.copytree(world, tmp_path / "world")
        pngs = sorted((tmp_path / "world" / "images").glob("*.png"))
        data = [p.read_bytes() for p in pngs]
        for i, path in enumerate(pngs):
            path.write_bytes(data[i - 1])
        world = tmp_path / "world"
    write_shards(world, captions, tmp_path / "shards", 40)
    problems = _mispaired(tiny_cfg, (world, captions, tmp_path / "shards"))
    what = "MLLM captions are not" if fault == "captions" else "image is not a render"
    assert sum(what in p for p in problems) == tiny_cfg.world.n_train


def test_sizes_json_has_one_reader_with_clear_errors(tmp_path):
    from lotlip.data.sizes import read_sizes, shard_counts, write_sizes

    write_sizes(tmp_path, {"train-000000.tar": 3})
    assert read_sizes(tmp_path) == {"train-000000.tar": 3}
    assert shard_counts(tmp_path) == {str(tmp_path / "train-000000.tar"): 3}
    (tmp_path / "sizes.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="sizes.json: not a mapping of shard name to sample count"):
        read_sizes(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing/sizes.json: not found"):
        read_sizes(tmp_path / "missing")
