"""Evaluate a model on a benchmark folder of any kind (read from its ``meta.json``).

A folder holds ``meta.json`` (``kind``: long | short | zeroshot; zeroshot adds ``classes`` and ``templates``) and
``texts.jsonl``; each record's image is its ``image`` path (absolute or relative to the folder) or
``images/<key>.png``. Generated sets (``lotlip synthetic-benchmark``) and imported real ones
(``lotlip import-benchmark``) share this format; the model is anything CLIP-like (see :mod:`lotlip.eval.retrieval`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lotlip.eval.retrieval import TextTokenizer, encode_images, encode_texts, evaluate_long_retrieval, image_paths
from lotlip.eval.short import multi_caption_recall, zero_shot_accuracy
from lotlip.io import read_jsonl


def bench_meta(bench_dir: Path) -> dict:
    """A benchmark folder's ``meta.json`` (its kind and sizes)."""
    path = bench_dir / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: benchmark metadata not found; rebuild the benchmark folder")
    meta = json.loads(path.read_text())
    if meta.get("kind") not in ("long", "short", "zeroshot"):
        raise ValueError(f"{path}: field 'kind' is {meta.get('kind')!r}, expected long, short or zeroshot")
    for field in ("classes", "templates") if meta["kind"] == "zeroshot" else ():
        if not isinstance(meta.get(field), list) or not meta[field]:
            raise ValueError(f"{path}: field {field!r} missing or empty (needed by kind zeroshot)")
    return meta


def evaluate_short_retrieval(model: torch.nn.Module, tokenizer: TextTokenizer, bench_dir: Path,
                             batch_size: int = 256) -> dict:
    records = read_jsonl(bench_dir / "texts.jsonl")
    images = encode_images(model, image_paths(bench_dir, records), batch_size)
    texts = [t for r in records for t in r["texts"]]
    owner = torch.tensor([i for i, r in enumerate(records) for _ in r["texts"]])
    metrics = multi_caption_recall(images, encode_texts(model, tokenizer, texts, batch_size), owner)
    return {**metrics, "n_images": len(records), "n_texts": len(texts)}


def evaluate_zero_shot(model: torch.nn.Module, tokenizer: TextTokenizer, bench_dir: Path, meta: dict,
                       batch_size: int = 256) -> dict:
    records = read_jsonl(bench_dir / "texts.jsonl")
    images = encode_images(model, image_paths(bench_dir, records), batch_size)
    templates, classes = meta["templates"], meta["classes"]
    prompts = [t.format(c) for c in classes for t in templates]
    feats = encode_texts(model, tokenizer, prompts, batch_size).view(len(classes), len(templates), -1)
    class_feats = torch.nn.functional.normalize(feats.mean(1), dim=-1)  # prompt ensembling
    labels = torch.tensor([r["label"] for r in records])
    return {**zero_shot_accuracy(images, class_feats, labels), "n_images": len(records), "n_classes": len(classes)}


def evaluate_benchmark(model: torch.nn.Module, tokenizer: TextTokenizer, bench_dir: str | Path,
                       batch_size: int = 256) -> dict:
    """Metrics of ``model`` on the benchmark in ``bench_dir``; includes its ``kind``."""
    bench_dir = Path(bench_dir)
    meta = bench_meta(bench_dir)
    if meta["kind"] == "long":
        metrics = evaluate_long_retrieval(model, tokenizer, bench_dir, batch_size)
    elif meta["kind"] == "short":
        metrics = evaluate_short_retrieval(model, tokenizer, bench_dir, batch_size)
    else:
        metrics = evaluate_zero_shot(model, tokenizer, bench_dir, meta, batch_size)
    return {"kind": meta["kind"], **metrics}
