"""A tiny data root holding every named protocol's set in its published layout (written on disk, no network).

Each image is a distinct colour and each text names ``item <i>`` of its image, so retrieval has something to find.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

N = 4  # images per set (ShareGPT4V repeats them over its 10k entries; ImageNet: 2 images)
FIXTURE_IMAGES = {"dci": N, "iiw": 3, "sharegpt4v-1k": 1000, "sharegpt4v-10k": 10000, "urban1k": N, "docci": N,
                  "coco-5k": N, "flickr-1k": N, "flickr-full": N + 1, "imagenet": 2}


def _jpg(path: Path, i: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24 + 4 * (i % 3), 20), ((60 * i) % 256, (255 - 40 * i) % 256, (25 * i) % 256)).save(path)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _dci(root: Path) -> None:
    base = root / "dci" / "densely_captioned_images"
    _write(base / "splits.json", json.dumps({"train": ["sa_1.json", "sa_2.json"], "valid": ["sa_3.json"],
                                             "test": ["sa_4.json"]}))
    for i in range(1, N + 1):
        _write(base / "annotations" / f"sa_{i}.json", json.dumps(
            {"image": f"sa_{i}.jpg", "short_caption": f"A photo of item {i}.", "extra_caption": f"Detail {i}.\nMore"}))
        _jpg(base / "photos" / f"sa_{i}.jpg", i)


def _docci(root: Path) -> None:
    records = [{"example_id": f"{s}_{i:05d}", "split": s, "image_file": f"{s}_{i:05d}.jpg",
                "description": f"A view of item {i}. Sunny\nday"}
               for s, i in [("train", 9)] + [("test", i) for i in range(1, N + 1)]]
    _write(root / "docci" / "docci_descriptions.jsonlines", _jsonl(records))
    for r in records:
        _jpg(root / "docci" / "images" / r["image_file"], int(r["example_id"][-2:]))
    _jpg(root / "docci" / "images_aar" / "aar_test_00005.jpg", 5)


def _iiw(root: Path) -> None:
    sets = {"IIW-400": [{"image/key": "aar_test_00005", "IIW": "Painting of item 5."}],
            "DCI_Test": [{"image": "sa_4.jpg", "IIW": "Balcony with item 4."}],
            "DOCCI_Test": [{"image": "test_00001", "IIW": "A view: item 1</s>wide"}]}
    for name, records in sets.items():
        _write(root / "iiw" / name / "data.jsonl", _jsonl(records))


def _sharegpt4v(root: Path) -> None:
    entries = [{"image": f"sam/images/sa_{i % N}.jpg", "conversations": [
        {"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": f"It shows item {i % N}."}]}
        for i in range(10000)]
    _write(root / "sharegpt4v" / "share4v_sam_10k.json", json.dumps(entries))
    for i in range(N):
        _jpg(root / "sa1b" / "sam" / "images" / f"sa_{i}.jpg", i)


def _urban1k(root: Path) -> None:
    base = root / "urban1k" / "Urban1k"
    for i in range(1, N + 1):
        _jpg(base / "image" / f"{i}.jpg", i)
        _write(base / "caption" / f"{i}.txt", f"A street with item {i}. Cars\nsecond line\n")


def _karpathy(root: Path) -> None:
    coco = [{"filename": f"COCO_val2014_{i:012d}.jpg", "filepath": "val2014", "split": "test",
             "sentences": [{"raw": f" item {i}, caption {k}"} for k in range(5)]} for i in range(1, N + 1)]
    flickr = [{"filename": f"{1000 + i}.jpg", "split": s, "sentences": [{"raw": f"item {i} #{k}"} for k in range(5)]}
              for s, i in [("train", N + 1)] + [("test", i) for i in range(1, N + 1)]]
    _write(root / "karpathy" / "dataset_coco.json", json.dumps({"images": coco}))
    _write(root / "karpathy" / "dataset_flickr30k.json", json.dumps({"images": flickr}))
    for i in range(1, N + 1):
        _jpg(root / "coco" / "val2014" / coco[i - 1]["filename"], i)
    lines = []
    for i in range(1, N + 2):
        _jpg(root / "flickr30k" / "flickr30k-images" / f"{1000 + i}.jpg", i)
        lines += [f"{1000 + i}.jpg#{k}\tA person with item {i} , take {k} ." for k in range(5)]
    _write(root / "flickr30k" / "results_20130124.token", "\n".join(lines) + "\n")


def _imagenet(root: Path) -> None:
    val = root / "imagenet" / "val"
    for k in range(1000):
        (val / f"n{k:08d}").mkdir(parents=True)
    _jpg(val / "n00000000" / "ILSVRC2012_val_00000001.JPEG", 1)
    _jpg(val / "n00000001" / "ILSVRC2012_val_00000002.JPEG", 2)


def build_data_root(root: Path) -> Path:
    """Write every protocol's tiny set under ``root`` (the layouts ``lotlip fetch`` writes); returns ``root``."""
    for build in (_dci, _docci, _iiw, _sharegpt4v, _urban1k, _karpathy, _imagenet):
        build(root)
    return root
