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
