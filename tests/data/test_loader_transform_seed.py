"""A random image transform is seeded per (seed, epoch, key): the same crops in a rerun, after a resume and with
any number of loader workers, whatever the global torch RNG holds."""

from __future__ import annotations

import pytest
import torch
from torchvision import transforms as T

from lotlip.config import SamplingConfig
from lotlip.data.loader import image_seed, parallel_train_batches, seeded_transform
from lotlip.data.shards import shard_urls
from lotlip.model import get_tokenizer

CROP = T.Compose([T.RandomResizedCrop(32, scale=(0.1, 1.0)), T.RandomHorizontalFlip(), T.ToTensor()])


def _stream(urls, workers=0, start_step=0, batch_size=8):
    return parallel_train_batches(urls, workers, start_step=start_step,
                                  sampling=SamplingConfig(n_subcaptions=1, merged_num=1),
                                  tokenizer=get_tokenizer("lotlip-tiny"), transform=CROP,
                                  batch_size=batch_size, seed=0, shuffle_buffer=16)


def _take(stream, n):
    batches = [next(stream)[0] for _ in range(n)]
    stream.close()
    return batches


def test_image_seed_is_stable_and_distinct():
    assert image_seed(0, 1, "000000007") == image_seed(0, 1, "000000007")
    seeds = {image_seed(s, e, k) for s in (0, 1) for e in (0, 1) for k in ("000000007", "000000008")}
    assert len(seeds) == 8 and all(0 <= s < 2**63 for s in seeds)


def test_seeded_transform_repeats_and_leaves_the_global_rng_alone(tiny_world):
    world, _, _ = tiny_world
    from PIL import Image

    image = Image.open(next((world / "images").glob("*.png"))).convert("RGB")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = seeded_transform(CROP, image, 5), seeded_transform(CROP, image, 5)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), before)
    assert any(not torch.equal(a, seeded_transform(CROP, image, s)) for s in range(6, 12))  # it is random


def test_random_crops_repeat_across_runs_and_resume(tiny_world):
    _, _, shards = tiny_world
    urls = shard_urls(shards)
    torch.manual_seed(1)
    fresh = _take(_stream(urls), 4)
    torch.manual_seed(2)  # the caller's RNG does not reach the crops
    again = _take(_stream(urls), 4)
    assert all(torch.equal(a, b) for a, b in zip(fresh, again, strict=True))
    resumed = _take(_stream(urls, start_step=2), 2)
    assert all(torch.equal(a, b) for a, b in zip(fresh[2:], resumed, strict=True))
    assert not torch.equal(fresh[0], fresh[1])


def test_random_crops_do_not_depend_on_the_worker_count(tiny_world):
    _, _, shards = tiny_world
    urls = shard_urls(shards)[:2]  # one shard per worker: the same samples in the same epoch either way
    with_workers = torch.cat(_take(_stream(urls, workers=2), 10))
    in_process = _take(_stream(urls, workers=0, batch_size=80), 1)[0]
    key = lambda t: sorted(x.sum().item() for x in t)  # noqa: E731  (one number per image)
    assert key(with_workers) == pytest.approx(key(in_process))
