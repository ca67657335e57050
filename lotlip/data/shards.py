"""webdataset shards: one sample per image (``png`` + ``json`` with raw and MLLM captions)."""

from __future__ import annotations

import io
import json
import logging
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import webdataset as wds

from lotlip.data.img2dataset import is_img2dataset_world, iter_images
from lotlip.data.sizes import SIZES_FILE, read_sizes, write_sizes
from lotlip.io import atomic_dir, read_jsonl

log = logging.getLogger(__name__)


class ShardError(ValueError):
    """Shard inputs are inconsistent or missing."""


def write_shards(world_dir: str | Path, captions_path: str | Path, out_dir: str | Path,
                 samples_per_shard: int, prefix: str = "train") -> dict[str, int]:
    """Write ``out_dir/<prefix>-NNNNNN.tar`` + ``sizes.json``; returns shard name -> sample count.

    ``world_dir`` is the synthetic world (``scenes.jsonl`` + ``images/``) or img2dataset output
    (:mod:`lotlip.data.img2dataset`); either way every sample gets its image and ``json`` with ``raw`` + ``captions``.
    """
    world_dir = Path(world_dir)
    if is_img2dataset_world(world_dir):
        return _write_img2dataset_shards(world_dir, captions_path, out_dir, samples_per_shard, prefix)
    scenes = read_jsonl(world_dir / "scenes.jsonl")
    captions = {r["key"]: r["captions"] for r in read_jsonl(captions_path)}
    missing = [r["key"] for r in scenes if r["key"] not in captions]
    if missing:
        raise ShardError(f"{captions_path}: no captions for {len(missing)} images (first: {missing[0]}); "
                         f"rerun the relabel stage")

    def samples() -> Iterator[dict]:
        for rec in scenes:
            png = (world_dir / "images" / f"{rec['key']}.png").read_bytes()
            meta = {"raw": rec["raw"], "captions": captions[rec["key"]], "scene": rec["scene"]}
            yield {"__key__": rec["key"], "png": png, "json": json.dumps(meta).encode()}

    return _write_samples(samples(), out_dir, samples_per_shard, prefix)


def _write_img2dataset_shards(world_dir: Path, captions_path: str | Path, out_dir: str | Path,
                              samples_per_shard: int, prefix: str) -> dict[str, int]:
    """Join downloaded images to their released captions by url-table row; images without captions are counted."""
    captions = {r["key"]: r for r in read_jsonl(captions_path)}
    uncaptioned = [0]

    def samples() -> Iterator[dict]:
        for sample in iter_images(world_dir):
            rec = captions.get(sample.key)
            if rec is None:
                uncaptioned[0] += 1
                continue
            meta = {"raw": rec.get("raw") or sample.caption, "captions": rec["captions"],
                    "url": rec.get("url") or sample.url}
            yield {"__key__": sample.key, sample.ext: sample.image, "json": json.dumps(meta).encode()}

    counts = _write_samples(samples(), out_dir, samples_per_shard, prefix,
                            empty_error=f"{captions_path}: none of the images in {world_dir} has a caption row "
                                        f"(keys are 9-digit url-table rows); rerun the relabel stage")
    if uncaptioned[0]:
        log.warning("%d downloaded images have no caption row in %s (dropped as bad rows); %d samples written",
                    uncaptioned[0], captions_path, sum(counts.values()))
    return counts


def _write_samples(samples: Iterable[dict], out_dir: str | Path, samples_per_shard: int, prefix: str,
                   empty_error: str | None = None) -> dict[str, int]:
    """Write samples into ``out_dir/<prefix>-NNNNNN.tar`` + ``sizes.json`` atomically; shard name -> count.

    ``empty_error``: raise it (nothing written) when no sample came.
    """
    with atomic_dir(out_dir) as tmp:
        # mtime=0: one tar header per member (a float mtime adds a PAX header each) and byte-reproducible shards
        with wds.ShardWriter(str(tmp / f"{prefix}-%06d.tar"), maxcount=samples_per_shard, verbose=0,
                             mtime=0) as sink:
            for sample in samples:
                sink.write(sample)
        counts = _count(tmp, prefix)
        if empty_error is not None and not any(counts.values()):
            raise ShardError(empty_error)
        write_sizes(tmp, counts)
    return counts


def _count(folder: Path, prefix: str) -> dict[str, int]:
    """Samples per shard, counted from the tar members' keys."""
    counts = {}
    for tar in sorted(folder.glob(f"{prefix}-*.tar")):
        with tarfile.open(tar) as tf:
            counts[tar.name] = len({Path(m.name).name.split(".", 1)[0] for m in tf.getmembers() if m.isfile()})
    return counts


def shard_urls(shard_dir: str | Path) -> list[str]:
    """Shard paths listed in ``sizes.json`` (a clear error if the folder was never built)."""
    try:
        sizes = read_sizes(shard_dir)
    except FileNotFoundError:
        sizes_path = Path(shard_dir) / SIZES_FILE
        raise ShardError(f"{sizes_path}: not found; build the shards first "
                         f"(snakemake {sizes_path.parent}/{SIZES_FILE})") from None
    return [str(Path(shard_dir) / name) for name in sorted(sizes)]


def first_keys(urls: list[str], n: int) -> set[str]:
    """The ``n`` smallest sample keys across the shards: a fixed training subset (experiment ``train_samples``)."""
    keys: set[str] = set()
    for url in urls:
        with tarfile.open(url) as tar:
            keys.update(name.split(".", 1)[0] for name in tar.getnames())
    if n > len(keys):
        raise ShardError(f"{Path(urls[0]).parent}: train_samples {n} exceeds the {len(keys)} samples in the shards")
    return set(sorted(keys)[:n])


def decode_image(data: bytes):
    """Encoded image bytes (PNG, JPEG, WebP) -> RGB PIL image."""
    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB")
