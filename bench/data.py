"""The benchmark's data: a synthetic world split written as webdataset shards both trainers can read.

Each sample holds ``png`` + ``json`` (raw caption and MLLM long captions: what lotlip's loader reads, as written by
``lotlip shards``) + ``txt`` (the raw caption: the only text open_clip_train reads). So both trainers decode the
same images and train on the same short captions. :func:`build_full_context_data` writes a second shard set of the
same images whose raw captions fill the 77-token context (figure 1's equal-length comparison).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import webdataset as wds

from lotlip.config import CAPTIONERS, WorldConfig
from lotlip.data.sizes import write_sizes
from lotlip.io import read_jsonl
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


def raw_captions(shard_dir: Path) -> list[str]:
    """The raw captions (json ``raw``) of every sample in the shards."""
    out = []
    for shard in sorted(shard_dir.glob("train-*.tar")):
        with tarfile.open(shard) as tar:
            out += [json.loads(tar.extractfile(m).read())["raw"] for m in tar if m.name.endswith(".json")]
    return out


def _write_shards(shard_dir: Path, samples: Iterable[tuple[str, bytes, dict]], samples_per_shard: int) -> int:
    """Shards of ``(key, png, meta)`` samples (``txt`` = ``meta["raw"]``) + ``sizes.json``; returns the shard count."""
    shard_dir.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    with wds.ShardWriter(str(shard_dir / "train-%06d.tar"), maxcount=samples_per_shard, verbose=0, mtime=0) as sink:
        for i, (key, png, meta) in enumerate(samples):
            sink.write({"__key__": key, "png": png, "json": json.dumps(meta).encode(), "txt": meta["raw"].encode()})
            name = f"train-{i // samples_per_shard:06d}.tar"
            sizes[name] = sizes.get(name, 0) + 1
    write_sizes(shard_dir, sizes)  # read by lotlip.data.shards.shard_urls and by open_clip_train
    return len(sizes)


def _samples(world_dir: Path, seed: int, raw: Callable[[dict, dict], str] | None = None
             ) -> Iterator[tuple[str, bytes, dict]]:
    """The world's samples with simulated long captions; ``raw(record, captions)`` replaces the raw caption."""
    scenes = load_scenes(world_dir)
    captions = {r["key"]: r["captions"] for r in relabel_scenes("simulated", scenes, list(CAPTIONERS), seed)}
    for rec in read_jsonl(world_dir / "scenes.jsonl"):
        png = (world_dir / "images" / f"{rec['key']}.png").read_bytes()
        text = rec["raw"] if raw is None else raw(rec, captions[rec["key"]])
        yield rec["key"], png, {"raw": text, "captions": captions[rec["key"]], "scene": rec["scene"]}


def build_bench_data(root: Path, n_samples: int, samples_per_shard: int, seed: int = 0) -> BenchData:
    """World split (32 px images, as the default config), simulated long captions, shards + ``sizes.json``."""
    world_dir, shard_dir = root / "world", root / "shards"
    build_train_split(WorldConfig(seed=seed, n_train=n_samples), world_dir)
    n_shards = _write_shards(shard_dir, _samples(world_dir, seed), samples_per_shard)
    return BenchData(world_dir, shard_dir, n_samples, n_shards)


def build_full_context_data(data: BenchData, root: Path, samples_per_shard: int, context: int = 77,
                            seed: int = 0) -> BenchData:
    """The same images and long captions, but each raw caption (json ``raw`` and ``txt``) is the image's long
    captions joined (repeated if needed) to at least ``context`` BPE tokens, so both trainers' text towers see
    full ``context``-token captions (lotlip's padding trim then has nothing to trim)."""
    from lotlip.model import get_tokenizer

    tokenizer = get_tokenizer("lotlip-tiny", num_corner_tokens=0)

    def fill(_rec: dict, captions: dict) -> str:
        joined = " ".join(c["long"] for c in captions.values() if c.get("long")) or _rec["raw"]
        text = joined
        while tokenizer.count_tokens(text) + 2 < context:
            text = f"{text} {joined}"
        return text

    shard_dir = root / "shards-full-context"
    n_shards = _write_shards(shard_dir, _samples(data.world_dir, seed, fill), samples_per_shard)
    return BenchData(data.world_dir, shard_dir, data.n_samples, n_shards)
