"""Data loading in DataLoader worker processes (``train.workers``): deterministic batch order across resumes,
every sample once per epoch, bad-sample counts reaching the trainer, training identical after a resume."""

from __future__ import annotations

import open_clip
import pytest
import torch

from lotlip.config import SamplingConfig
from lotlip.data.loader import parallel_train_batches, worker_start_step
from lotlip.data.shards import shard_urls
from lotlip.data.sizes import shard_counts
from lotlip.data.validate import SkipCounter
from lotlip.model import get_tokenizer
from tests.data.test_bad_samples import dirty_shards  # noqa: F401  (fixture)


def _stream(urls, workers, start_step=0, skips=None, sizes=None, batch_size=8):
    return parallel_train_batches(urls, workers, start_step=start_step, skips=skips, sizes=sizes,
                                  sampling=SamplingConfig(n_subcaptions=1, merged_num=1),
                                  tokenizer=get_tokenizer("lotlip-tiny"),
                                  transform=open_clip.image_transform(32, is_train=False),
                                  batch_size=batch_size, seed=0, shuffle_buffer=16)


@pytest.mark.parametrize(("start", "worker", "workers", "expected"),
                         [(0, 0, 2, 0), (1, 0, 2, 1), (1, 1, 2, 0), (5, 0, 2, 3), (5, 1, 2, 2), (6, 2, 3, 2)])
def test_worker_start_step_counts_its_round_robin_batches(start, worker, workers, expected):
    assert worker_start_step(start, worker, workers) == expected


def test_batches_are_deterministic_and_resume_at_any_step(tiny_world):
    _, _, shards = tiny_world
    urls = shard_urls(shards)
    first = _stream(urls, 2)
    fresh = [next(first) for _ in range(7)]
    first.close()
    again = _stream(urls, 2)
    repeat = [next(again) for _ in range(7)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(fresh, repeat, strict=True))
    again.close()
    resumed = _stream(urls, 2, start_step=3)
    for want in fresh[3:]:
        got = next(resumed)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    resumed.close()


def test_each_worker_epoch_covers_its_shards_once(tiny_world):
    _, _, shards = tiny_world
    urls = shard_urls(shards)[:2]  # 40 + 40 samples: one shard per worker, 5 batches of 8 each per epoch
    stream = _stream(urls, 2, batch_size=8)
    images = torch.cat([next(stream)[0] for _ in range(10)])
    stream.close()
    single = _stream(urls, 0, batch_size=80)
    everything = next(single)[0]
    single.close()
    key = lambda t: sorted(x.sum().item() for x in t)  # noqa: E731  (one number per image)
    assert key(images) == pytest.approx(key(everything))


def test_skip_counts_from_workers_reach_the_trainer(dirty_shards, tmp_path):  # noqa: F811
    import shutil

    copy = shutil.copy(dirty_shards[0], tmp_path / "copy-000000.tar")  # two shards, each with its bad samples
    skips = SkipCounter()
    stream = parallel_train_batches([dirty_shards[0], str(copy)], 2, skips=skips,
                                    sampling=SamplingConfig(n_subcaptions=1, merged_num=1, max_caption_chars=2000),
                                    tokenizer=get_tokenizer("lotlip-tiny"), transform=lambda im: torch.zeros(3, 32, 32),
                                    batch_size=4, seed=0, shuffle_buffer=0)
    for _ in range(6):  # 3 batches per worker: the third comes after its shard's bad samples (at the end)
        next(stream)
    stream.close()
    for reason in ("undecodable_image", "empty_caption", "caption_too_long", "missing_field"):
        assert skips.counts[reason] == 2, reason  # one epoch of each worker's shard


def test_more_workers_than_shards_is_a_clear_error(tiny_world):
    _, _, shards = tiny_world
    stream = _stream(shard_urls(shards)[:1], 2, sizes=shard_counts(shards))
    with pytest.raises(ValueError, match="train.workers: 2 workers but only 1 shards"):
        next(stream)
