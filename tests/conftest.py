"""Shared fixtures: tiny configs and a tiny built world (built once per session).

``LOTLIP_NO_SKIPS=1`` (set by ``.ci/run``) turns every skipped test into a failure naming the skip's reason:
in CI a missing Slurm cluster or img2dataset must fail the run, not pass it quietly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lotlip.config import load_config

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "world": {"n_train": 96, "image_size": 32},
    "benchmarks": {"dci_syn": {"n_groups": 3, "group_size": 4}},
    "shards": {"samples_per_shard": 40},
    "train": {"steps": 4, "batch_size": 16, "warmup_steps": 1, "checkpoint_every": 2, "threads": 1},
}


@pytest.fixture(scope="session")
def tiny_cfg():
    return load_config(TINY)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory, tiny_cfg):
    """A built training split, its captions and shards: (world_dir, captions_path, shard_dir)."""
    from lotlip.data.shards import write_shards
    from lotlip.io import write_jsonl
    from lotlip.relabel import relabel_scenes
    from lotlip.world.build import build_train_split, load_scenes

    root = tmp_path_factory.mktemp("world")
    world = root / "world"
    build_train_split(tiny_cfg.world, world)
    captions = root / "captions.jsonl"
    write_jsonl(captions, list(relabel_scenes("simulated", load_scenes(world), tiny_cfg.relabel.captioners, 0)))
    shards = root / "shards"
    write_shards(world, captions, shards, tiny_cfg.shards.samples_per_shard)
    return world, captions, shards


def planned_jobs(snakemake_output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a (dry-)run's output; {} when nothing is planned."""
    lines = snakemake_output.splitlines()
    if "Job stats:" not in lines:
        return {}
    counts = {}
    for line in lines[lines.index("Job stats:") + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``LOTLIP_NO_SKIPS=1`` a skip is reported as a failure (CI never skips what it claims to test)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("LOTLIP_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but LOTLIP_NO_SKIPS=1 (CI) forbids skips: {reason}"
