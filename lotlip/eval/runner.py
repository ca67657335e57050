"""Evaluate a model on a benchmark folder of any kind (read from its ``meta.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lotlip.eval.retrieval import encode_images, encode_texts, evaluate_long_retrieval
from lotlip.eval.short import multi_caption_recall, zero_shot_accuracy
from lotlip.io import read_jsonl
from lotlip.model.factory import LoTLIP
from lotlip.model.tokenizer import CornerTokenizer


def _meta(bench_dir: Path) -> dict:
    path = bench_dir / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: benchmark metadata not found; rebuild the benchmark folder")
    meta = json.loads(path.read_text())
    if meta.get("kind") not in ("long", "short", "zeroshot"):
        raise ValueError(f"{path}: field 'kind' is {meta.get('kind')!r}, expected long, short or zeroshot")
    return meta


def evaluate_short_retrieval(model: LoTLIP, tokenizer: CornerTokenizer, bench_dir: Path,
                             batch_size: int = 256) -> dict:
    records = read_jsonl(bench_dir / "texts.jsonl")
    images = encode_images(model, [bench_dir / "images" / f"{r['key']}.png" for r in records], batch_size)
    texts = [t for r in records for t in r["texts"]]
    owner = torch.tensor([i for i, r in enumerate(records) for _ in r["texts"]])
    metrics = multi_caption_recall(images, encode_texts(model, tokenizer, texts, batch_size), owner)
    return {**metrics, "n_images": len(records), "n_texts": len(texts)}


def evaluate_zero_shot(model: LoTLIP, tokenizer: CornerTokenizer, bench_dir: Path, meta: dict,
                       batch_size: int = 256) -> dict:
    records = read_jsonl(bench_dir / "texts.jsonl")
    images = encode_images(model, [bench_dir / "images" / f"{r['key']}.png" for r in records], batch_size)
    templates, classes = meta["templates"], meta["classes"]
    prompts = [t.format(c) for c in classes for t in templates]
    feats = encode_texts(model, tokenizer, prompts, batch_size).view(len(classes), len(templates), -1)
    class_feats = torch.nn.functional.normalize(feats.mean(1), dim=-1)  # prompt ensembling
    labels = torch.tensor([r["label"] for r in records])
    return {**zero_shot_accuracy(images, class_feats, labels), "n_images": len(records), "n_classes": len(classes)}


def evaluate_benchmark(model: LoTLIP, tokenizer: CornerTokenizer, bench_dir: str | Path,
                       batch_size: int = 256) -> dict:
    """Metrics of ``model`` on the benchmark in ``bench_dir``; includes its ``kind``."""
    bench_dir = Path(bench_dir)
    meta = _meta(bench_dir)
    if meta["kind"] == "long":
        metrics = evaluate_long_retrieval(model, tokenizer, bench_dir, batch_size)
    elif meta["kind"] == "short":
        metrics = evaluate_short_retrieval(model, tokenizer, bench_dir, batch_size)
    else:
        metrics = evaluate_zero_shot(model, tokenizer, bench_dir, meta, batch_size)
    return {"kind": meta["kind"], **metrics}
