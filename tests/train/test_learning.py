"""The model learns: a short run lowers its loss and beats chance and its own untrained weights on long texts.

Layout and range checks pass for a model that learns nothing; these do not. The run: the ``long`` method (raw
alt-text + long sub-captions), ``lotlip-tiny`` on 256 synthetic images, 100 steps of 32, about half a minute
on two cores. The long-text set: 40 images, one per salient (colour, shape) class, DCI-style annotator texts
(chance R@1 = 2.5 %). Margins, measured on this machine: the loss falls from 3.6 to 2.7 (25 %), R@1 (mean of
I2T and T2I) reaches ~24 % against 2.5 % untrained. The guards ask for a 15 % loss drop and +10 points.

Each guard is shown to bite (``slow``): captions shuffled across images, a zero learning rate, a sign-flipped
loss and random image features must each fail at least one of them.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from lotlip.config import load_config, run_config
from lotlip.data.shards import write_shards
from lotlip.eval.retrieval import evaluate_long_retrieval
from lotlip.io import read_jsonl, write_jsonl
from lotlip.model.checkpoint import load_model
from lotlip.relabel import relabel_scenes
from lotlip.train import loop
from lotlip.world.build import build_benchmark, build_train_split, load_scenes

LOSS_DROP = 0.15  # the mean loss of the last 10 steps is at least 15 % below that of the first 10
MARGIN = 10.0  # R@1 points (mean of I2T and T2I) above chance and above the untrained model
CFG = {
    "world": {"n_train": 256},
    "benchmarks": {"dci_syn": {"n_groups": 40, "group_size": 1}},
    "shards": {"samples_per_shard": 128},
    "train": {"steps": 100, "batch_size": 32, "warmup_steps": 2, "checkpoint_every": 1000, "threads": 2},
    "experiments": {"long": {"method": "long"}},
}


@dataclasses.dataclass
class Outcome:
    losses: list[float]
    r1: float  # trained, mean of I2T and T2I R@1 (%)
    untrained_r1: float
    chance: float


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cfg = load_config(CFG)
    root = tmp_path_factory.mktemp("learning")
    build_train_split(cfg.world, root / "world")
    write_jsonl(root / "captions.jsonl",
                list(relabel_scenes("simulated", load_scenes(root / "world"), cfg.relabel.captioners, 0)))
    write_shards(root / "world", root / "captions.jsonl", root / "shards", cfg.shards.samples_per_shard)
    build_benchmark(cfg.benchmarks["dci_syn"], cfg.world, root / "bench")
    return cfg, root


def _r1(metrics: dict) -> float:
    return (metrics["i2t_r1"] + metrics["t2i_r1"]) / 2


def _train(cfg, shards: Path, out: Path, **train) -> Path:
    run = run_config(cfg, "long")
    loop.train(dataclasses.replace(run, train=dataclasses.replace(run.train, **train)), shards, out / "model.pt")
    return out


def _outcome(cfg, out: Path, bench: Path, encode_image=None) -> Outcome:
    """Losses logged by the run in ``out``; R@1 of its model (image features from ``encode_image`` if given)."""
    losses = [float(row.split(",")[1]) for row in (out / "log.csv").read_text().splitlines()[1:]]
    model, tokenizer, _ = load_model(out / "model.pt")
    if encode_image is not None:
        model.encode_image = encode_image
    run = run_config(cfg, "long")
    untrained, _ = loop.build_model(run.train.model, run.experiment)  # the same seeded init the run started from
    n_images = len(read_jsonl(bench / "texts.jsonl"))
    return Outcome(losses, _r1(evaluate_long_retrieval(model, tokenizer, bench)),
                   _r1(evaluate_long_retrieval(untrained.eval(), tokenizer, bench)), 100 / n_images)


def failed_guards(outcome: Outcome) -> list[str]:
    """The learning guards this outcome fails ([] = it learned)."""
    first, last = outcome.losses[:10], outcome.losses[-10:]
    start, end = sum(first) / len(first), sum(last) / len(last)
    failed = []
    if not end <= (1 - LOSS_DROP) * start:
        failed.append(f"loss {start:.3f} -> {end:.3f}, not {LOSS_DROP:.0%} lower")
    if not outcome.r1 >= outcome.chance + MARGIN:
        failed.append(f"R@1 {outcome.r1:.1f} is not {MARGIN} points above chance {outcome.chance:.1f}")
    if not outcome.r1 >= outcome.untrained_r1 + MARGIN:
        failed.append(f"R@1 {outcome.r1:.1f} is not {MARGIN} points above untrained {outcome.untrained_r1:.1f}")
    return failed


@pytest.fixture(scope="module")
def learned_run(world, tmp_path_factory) -> Path:
    cfg, root = world
    return _train(cfg, root / "shards", tmp_path_factory.mktemp("learned"))


@pytest.fixture(scope="module")
def learned(world, learned_run) -> Outcome:
    cfg, root = world
    return _outcome(cfg, learned_run, root / "bench")


def test_loss_falls_by_a_stated_margin(learned):
    start, end = sum(learned.losses[:10]) / 10, sum(learned.losses[-10:]) / 10
    assert len(learned.losses) == 100 and end <= (1 - LOSS_DROP) * start, (start, end)


def test_trained_model_beats_chance_and_its_untrained_self_on_long_texts(learned):
    assert failed_guards(learned) == []
    assert learned.chance == pytest.approx(2.5)


def _shuffled_shards(world_dir: Path, captions: Path, out: Path, samples_per_shard: int) -> Path:
    """Shards whose raw and MLLM captions belong to other images (a fixed derangement)."""
    order = [r["key"] for r in read_jsonl(world_dir / "scenes.jsonl")]
    random.Random(0).shuffle(order)
    other = dict(zip(order, order[1:] + order[:1], strict=True))  # one cycle: no image keeps its captions
    shutil.copytree(world_dir, out / "world")
    scenes = {r["key"]: r for r in read_jsonl(world_dir / "scenes.jsonl")}
    write_jsonl(out / "world" / "scenes.jsonl", [{**r, "raw": scenes[other[r["key"]]]["raw"]} for r in scenes.values()])
    rows = {r["key"]: r for r in read_jsonl(captions)}
    write_jsonl(out / "captions.jsonl", [{**r, "captions": rows[other[k]]["captions"]} for k, r in rows.items()])
    write_shards(out / "world", out / "captions.jsonl", out / "shards", samples_per_shard)
    return out / "shards"


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["shuffled_captions", "zero_lr", "sign_flipped_loss", "random_features"])
def test_each_guard_bites(world, learned_run, tmp_path, monkeypatch, fault):
    """Break what the guards protect; the same guards must then fail (random features: the learned run's model)."""
    cfg, root = world
    run_dir, encode_image = learned_run, None
    if fault == "shuffled_captions":
        shuffled = _shuffled_shards(root / "world", root / "captions.jsonl", tmp_path, cfg.shards.samples_per_shard)
        run_dir = _train(cfg, shuffled, tmp_path / "run")
    elif fault == "zero_lr":
        run_dir = _train(cfg, root / "shards", tmp_path / "run", lr=0.0)
    elif fault == "sign_flipped_loss":
        real = loop.loss_for

        class Flipped(torch.nn.Module):  # gradient ascent on the contrastive loss
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, *args):
                return {name: -value for name, value in self.inner(*args).items()}

        monkeypatch.setattr(loop, "loss_for", lambda exp, **kwargs: Flipped(real(exp, **kwargs)))
        run_dir = _train(cfg, root / "shards", tmp_path / "run")
    else:
        def encode_image(images, normalize=False):
            return torch.nn.functional.normalize(torch.randn(len(images), 128), dim=-1)

    outcome = _outcome(cfg, run_dir, root / "bench", encode_image=encode_image)
    failed = failed_guards(outcome)
    print(f"{fault}: failed guards: {failed}")
    assert failed, f"{fault}: every learning guard passed ({json.dumps(dataclasses.asdict(outcome))[:200]})"
