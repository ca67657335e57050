"""Table 1 / Table 6 analog: size and text statistics of the training set and every benchmark."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from lotlip.data.img2dataset import is_img2dataset_world
from lotlip.data.sizes import read_sizes
from lotlip.data.subcaptions import split_sentences
from lotlip.io import read_jsonl

CONTEXT_77 = 77  # CLIP's text context: the share of texts longer than it is reported


def _token_spread(counts: list[int]) -> dict:
    """Distribution of per-text token counts: p10, median, p90, max, and % of texts over 77 tokens."""
    arr = np.asarray(counts or [0], dtype=float)
    p10, median, p90 = np.percentile(arr, [10, 50, 90])
    return {"tokens_p10": round(float(p10), 1), "tokens_median": round(float(median), 1),
            "tokens_p90": round(float(p90), 1), "tokens_max": int(arr.max()),
            "over_77_pct": round(100 * float((arr > CONTEXT_77).mean()), 1)}


def _row(name: str, kind: str, n_images: int, texts: list[str], count_tokens: Callable[[str], int]) -> dict:
    n = max(len(texts), 1)
    counts = [count_tokens(t) for t in texts]
    return {"dataset": name, "kind": kind, "n_images": n_images, "n_texts": len(texts),
            "subcaptions_per_text": round(sum(len(split_sentences(t)) for t in texts) / n, 2),
            "tokens_per_text": round(sum(counts) / n, 2), **_token_spread(counts)}


def dataset_stats(world_dir: str | Path, captions_path: str | Path, bench_dirs: list[str | Path],
                  count_tokens: Callable[[str], int]) -> pd.DataFrame:
    """One row per text source: training raw captions, each captioner's short and long captions, each benchmark.

    A captioner's rows count the images it captioned (``n_images``) and its non-empty captions (``n_texts``; so
    short captions per image is ``n_texts / n_images``); its short row is left out when it wrote no short caption.
    """
    captions = read_jsonl(captions_path)
    if is_img2dataset_world(world_dir):  # real images: raw captions are the caption table's (of downloaded images)
        n_images = sum(read_sizes(world_dir).values())
        raws = [r["raw"] for r in captions if r.get("raw")]
    else:
        scenes = read_jsonl(Path(world_dir) / "scenes.jsonl")
        n_images, raws = len(scenes), [r["raw"] for r in scenes]
    rows = [_row("train (raw)", "train", n_images, raws, count_tokens)]
    for captioner in sorted({name for r in captions for name in r["captions"]}):  # released rows may lack one
        own = [r["captions"][captioner] for r in captions if captioner in r["captions"]]
        shorts = [c["short"] for c in own if (c.get("short") or "").strip()]
        if shorts:
            rows.append(_row(f"train (short, {captioner})", "train", len(own), shorts, count_tokens))
        rows.append(_row(f"train (long, {captioner})", "train", len(own), [c["long"] for c in own], count_tokens))
    for bench in map(Path, bench_dirs):
        meta = json.loads((bench / "meta.json").read_text())
        records = read_jsonl(bench / "texts.jsonl")
        if meta["kind"] == "long":
            texts = [r["text"] for r in records]
        elif meta["kind"] == "short":
            texts = [t for r in records for t in r["texts"]]
        else:
            texts = [t.format(c) for c in meta["classes"] for t in meta["templates"]]
        rows.append(_row(bench.name, meta["kind"], len(records), texts, count_tokens))
    return pd.DataFrame(rows)
