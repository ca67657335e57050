"""The benchmark's data: a synthetic world split written as webdataset shards both trainers can read.

Each sample holds ``png`` + ``json`` (raw caption and MLLM long captions: what lotlip's loader reads, as written by
``lotlip shards``) + ``txt`` (the raw caption: the only text open_clip_train reads). So both trainers decode the
same images and train on the same short captions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import webdataset as wds

from lotlip.config import CAPTIONERS, WorldConfig
from lotlip.io import read_jsonl, write_json
from lotlip.relabel import relabel_scenes
from lotlip.world.build import build_train_split, load_scenes


@dataclass(frozen=True)
class BenchData:
    """Where the benchmark's world and shards are."""

    world_dir: Path
    shard_dir: Path
    n_samples: int
    n_shards: int

    def brace_pattern(self) -> str:
        """``DIR/train-{000000..00000N}.tar``: the shard list as open_clip_train takes it."""
        return str(self.shard_dir / f"train-{{000000..{self.n_shards - 1:06d}}}.tar")


def build_bench_data(root: Path, n_samples: int, samples_per_shard: int, seed: int = 0) -> BenchData:
    """World split (32 px images, as the default config), simulated long captions, shards + ``sizes.json``."""
    world_dir, shard_dir = root / "world", root / "shards"
    build_train_split(WorldConfig(seed=seed, n_train=n_samples), world_dir)
    scenes = load_scenes(world_dir)
    captions = {r["key"]: r["captions"] for r in relabel_scenes("simulated", scenes, list(CAPTIONERS), seed)}
    records = read_jsonl(world_dir / "scenes.jsonl")
    shard_dir.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    with wds.ShardWriter(str(shard_dir / "train-%06d.tar"), maxcount=samples_per_shard, verbose=0, mtime=0) as sink:
        for i, rec in enumerate(records):
            png = (world_dir / "images" / f"{rec['key']}.png").read_bytes()
            meta = {"raw": rec["raw"], "captions": captions[rec["key"]], "scene": rec["scene"]}
            sink.write({"__key__": rec["key"], "png": png, "json": json.dumps(meta).encode(),
                        "txt": rec["raw"].encode()})
            name = f"train-{i // samples_per_shard:06d}.tar"
            sizes[name] = sizes.get(name, 0) + 1
    write_json(shard_dir / "sizes.json", sizes)  # read by lotlip.data.shards.shard_urls and by open_clip_train
    return BenchData(world_dir, shard_dir, len(records), len(sizes))
