"""Figure 5: the input pipeline's samples/s (shard read, PNG decode, image transform, sub-caption sampling,
tokenisation: ``lotlip.data.loader.train_batches`` exactly as the trainer calls it) vs the trainer's consumption.

The loader runs in the trainer's own process, between steps, so its cost is part of each step: a ratio R means
loading takes 1/R of the trainer's time. Stages are timed cumulatively (tar read + shuffle only; + sample parsing
and PNG decode; the whole batch pipeline) so a miss shows which stage costs. The first batch waits for the
2,000-sample shuffle buffer; it is timed apart.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import open_clip
import torch

from bench.common import throughput
from bench.data import BenchData
from lotlip.config import SamplingConfig
from lotlip.data.loader import epoch_stream, train_batches
from lotlip.data.shards import shard_urls
from lotlip.data.validate import SkipCounter, parse_sample
from lotlip.model import get_tokenizer

CONFIGS = {"short": (0, 0), "multitext": (3, 2)}  # name -> (long sub-captions N, corner tokens K)


@dataclass(frozen=True)
class InputSettings:
    """Sizes of figure 5."""

    batch: int = 128
    batches: int = 20
    threads: int = 2


QUICK_INPUT = InputSettings(batch=16, batches=3, threads=1)


def _loader_rate(data: BenchData, n_sub: int, corners: int, s: InputSettings) -> dict:
    tokenizer = get_tokenizer("lotlip-tiny", num_corner_tokens=corners)
    transform = open_clip.image_transform(32, is_train=False)
    sampling = SamplingConfig(n_subcaptions=n_sub)
    start = time.perf_counter()
    batches = train_batches(shard_urls(data.shard_dir), sampling, tokenizer, transform, s.batch, seed=0)
    next(batches)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(s.batches):
        next(batches)
    return {"first_batch_s": round(first, 3), "samples_per_s": throughput(s.batches * s.batch,
                                                                          time.perf_counter() - start)}


def _stage_rates(data: BenchData, n: int) -> dict:
    """Samples/s of the stream alone (tar read + shuffle) and with parsing + PNG decode (first ``n`` samples)."""
    urls = shard_urls(data.shard_dir)
    start = time.perf_counter()
    raw = list(itertools.islice(epoch_stream(urls, 0, 0, 2000, SkipCounter()), n))
    read = time.perf_counter() - start
    start = time.perf_counter()
    for sample in raw:
        parse_sample(sample, 100_000)
    parse = time.perf_counter() - start
    return {"tar_read_shuffle": throughput(len(raw), read), "parse_decode_png": throughput(len(raw), parse)}


def bench_input(data: BenchData, s: InputSettings) -> dict:
    """Figure 5: loader samples/s for short-only and multi-text batches, plus the stage rates."""
    torch.set_num_threads(s.threads)
    rows = {name: {"n_subcaptions": n_sub, "corner_tokens": k, **_loader_rate(data, n_sub, k, s)}
            for name, (n_sub, k) in CONFIGS.items()}
    return {"batch": s.batch, "timed_batches": s.batches, "transform": "open_clip image_transform(32, is_train=False)",
            "loader": rows, "stages": _stage_rates(data, s.batch * s.batches), "goal_ratio": 5.0}


def profile_loader(data: BenchData, s: InputSettings, name: str = "short") -> list[dict]:
    """cProfile of the loader's steady batches (shown when the loader/trainer ratio misses its goal)."""
    from bench.common import cprofile_top

    n_sub, corners = CONFIGS[name]
    batches = train_batches(shard_urls(data.shard_dir), SamplingConfig(n_subcaptions=n_sub),
                            get_tokenizer("lotlip-tiny", num_corner_tokens=corners),
                            open_clip.image_transform(32, is_train=False), s.batch, seed=0)
    next(batches)
    return cprofile_top(lambda: [next(batches) for _ in range(s.batches)], rows=18, sort="tottime")
