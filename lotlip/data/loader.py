"""Training batches from webdataset shards: images + ``[raw, long_1..long_N]`` token ids.

The stream is deterministic in (seed, epoch): shard order and the shuffle buffer are seeded per epoch, and the
sub-caption draw and the image transform are seeded per (seed, epoch, key), so a resumed run, and a run with any
number of loader workers, sees the same batches (a random transform must draw from torch's CPU RNG).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import torch
import webdataset as wds

from lotlip.config import SamplingConfig
from lotlip.data.subcaptions import sample_texts
from lotlip.data.validate import BadSampleError, SkipCounter, parse_sample
from lotlip.model.tokenizer import CornerTokenizer, trim_padding


def epoch_stream(urls: list[str], seed: int, epoch: int, shuffle_buffer: int, skips: SkipCounter) -> Iterator[dict]:
    """One epoch of raw webdataset samples: shards in a seeded order, then a seeded shuffle buffer."""
    order = list(urls)
    random.Random(f"shards:{seed}:{epoch}").shuffle(order)
    # nodesplitter/workersplitter=None: each rank already reads only its own shards
    # (lotlip.train.distributed.rank_shards) and each loader worker its own (ShardBatches)
    ds = wds.WebDataset(order, shardshuffle=False, empty_check=False, nodesplitter=None, workersplitter=None,
                        handler=skips.shard_error)
    if shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, initial=shuffle_buffer, rng=random.Random(f"buffer:{seed}:{epoch}"))
    return iter(ds)


def image_seed(seed: int, epoch: int, key: str) -> int:
    """The torch seed of sample ``key``'s image transform in ``epoch`` (stable across processes and runs)."""
    digest = hashlib.sha256(f"image:{seed}:{epoch}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # < 2**63: a valid torch seed


def seeded_transform(transform: Callable, image: Any, seed: int) -> torch.Tensor:
    """``transform(image)`` with torch's CPU RNG seeded by ``seed``; the caller's RNG state is left unchanged."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transform(image)


def _check_counts(read: Counter, sizes: dict[str, int], urls: list[str], skips: SkipCounter) -> None:
    """Count the samples a shard lost (cut short, even at a sample boundary) as ``truncated_shard`` skips."""
    for url in urls:
        missing = sizes.get(url, 0) - read[url]
        if missing > 0:
            skips.skip(url, "truncated_shard", f"read {read[url]} of the {sizes[url]} samples sizes.json lists",
                       n=missing)


def train_batches(urls: list[str], sampling: SamplingConfig, tokenizer: CornerTokenizer,
                  transform: Callable, batch_size: int, seed: int, start_step: int = 0,
                  shuffle_buffer: int = 2000, captioners: list[str] | None = None,
                  skips: SkipCounter | None = None,
                  keep: set[str] | None = None,
                  sizes: dict[str, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches ``(images [B,3,H,W], tokens [B,1+N,L])``, starting at batch ``start_step``.

    Bad samples (undecodable image, missing/empty/non-UTF-8/overlong caption, broken shard member) are
    counted in ``skips`` and left out, or raise :class:`BadSampleError` when ``sampling.strict``. ``keep``
    restricts training to those sample keys (a data-scale subset). ``sizes`` (shard path -> samples, see
    :func:`lotlip.data.sizes.shard_counts`): samples a shard lacks at the end of an epoch are counted as
    ``truncated_shard`` skips.
    """
    skips = skips if skips is not None else SkipCounter(strict=sampling.strict)
    epoch, skip = 0, start_step * batch_size
    while True:
        images, texts = [], []
        n_good, read = 0, Counter()
        for sample in epoch_stream(urls, seed, epoch, shuffle_buffer, skips):
            key = sample.get("__key__", "?")
            read[sample.get("__url__")] += 1
            if keep is not None and key not in keep:
                continue
            try:
                image, raw, captions = parse_sample(sample, sampling.max_caption_chars)
            except BadSampleError as exc:
                reason, detail = (exc.args + ("",))[:2]
                skips.skip(f"{sample.get('__url__', 'shard')}:{key}", reason, detail)
                continue
            n_good += 1
            if skip:
                skip -= 1
                continue
            rng = random.Random(f"texts:{seed}:{epoch}:{key}")
            texts.append(sample_texts(raw, captions, sampling.n_subcaptions, sampling.merged_num,
                                      sampling.policy, rng, captioners, pool=sampling.pool))
            images.append(seeded_transform(transform, image, image_seed(seed, epoch, key)))
            if len(images) == batch_size:
                flat = tokenizer([t for per_image in texts for t in per_image])  # [B*(1+N), L]
                tokens = trim_padding(flat, tokenizer.pad_id).view(batch_size, len(texts[0]), -1)
                yield torch.stack(images), tokens
                images, texts = [], []
        if sizes is not None:
            _check_counts(read, sizes, urls, skips)
        if n_good == 0:
            raise ValueError(f"shards {urls[:2]}...: no usable samples (skipped: {dict(skips.counts)})")
        epoch += 1  # a partial last batch is dropped


def worker_start_step(start_step: int, worker: int, workers: int) -> int:
    """Batches worker ``worker`` of ``workers`` made before global batch ``start_step`` (round-robin order)."""
    return max(0, -(-(start_step - worker) // workers))


class ShardBatches(torch.utils.data.IterableDataset):
    """:func:`train_batches` split over DataLoader worker processes, batch order kept deterministic.

    Worker ``w`` of ``k`` reads shards ``w, w + k, ...`` and makes whole batches; ``DataLoader`` hands them out
    round-robin, so global batch ``j`` is worker ``j % k``'s batch ``j // k`` and a resumed run (``start_step``)
    sees the same batches (the worker roles rotate so that the one owning batch ``start_step`` runs first).
    Each batch comes with the worker's skip counts so far, which :func:`parallel_train_batches` folds back into
    the caller's :class:`SkipCounter`.
    """

    def __init__(self, urls: list[str], start_step: int, kwargs: dict) -> None:
        super().__init__()
        self.urls, self.start_step, self.kwargs = urls, start_step, kwargs

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, int, dict[str, int]]]:
        info = torch.utils.data.get_worker_info()
        process, workers = (info.id, info.num_workers) if info else (0, 1)
        # DataLoader asks process 0 first, so after a resume process p plays worker (p + start) % k: the
        # worker whose turn global batch ``start`` is comes first
        worker = (process + self.start_step) % workers
        urls = self.urls[worker::workers]
        skips = SkipCounter(strict=self.kwargs["sampling"].strict)
        sizes = self.kwargs.get("sizes")
        kwargs = {**self.kwargs, "skips": skips,
                  "sizes": {u: sizes[u] for u in urls if u in sizes} if sizes is not None else None}
        start = worker_start_step(self.start_step, worker, workers)
        for images, tokens in train_batches(urls, start_step=start, **kwargs):
            yield images, tokens, process, dict(skips.counts)


def parallel_train_batches(urls: list[str], workers: int, start_step: int = 0, skips: SkipCounter | None = None,
                           **kwargs) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """:func:`train_batches` decoded in ``workers`` processes (0: in this process), same arguments."""
    if workers == 0:
        yield from train_batches(urls, start_step=start_step, skips=skips, **kwargs)
        return
    if len(urls) < workers:
        raise ValueError(f"train.workers: {workers} workers but only {len(urls)} shards for this rank; "
                         "use fewer workers or smaller shards (shards.samples_per_shard)")
    skips = skips if skips is not None else SkipCounter(strict=kwargs["sampling"].strict)
    # own generator: the workers' base seed must not consume the global torch RNG a checkpoint restores
    loader = torch.utils.data.DataLoader(ShardBatches(urls, start_step, kwargs), batch_size=None,
                                         num_workers=workers, persistent_workers=True, prefetch_factor=2,
                                         generator=torch.Generator().manual_seed(kwargs["seed"]))
    seen: dict[int, Counter] = {}
    for images, tokens, worker, counts in loader:
        before = seen.get(worker, Counter())
        for reason, n in counts.items():
            if n > before[reason]:
                skips.skip(f"loader worker {worker}", reason, n=n - before[reason])
        seen[worker] = Counter(counts)
        yield images, tokens
