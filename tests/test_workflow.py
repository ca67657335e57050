"""End to end: the workflow on the tiny test config in a temporary directory."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, planned_jobs

BIN = Path(sys.executable).parent


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.slow
def test_pipeline_builds_the_table_then_plans_nothing(tmp_path):
    test_cfg = [str(REPO / "config" / "config.yaml"), str(REPO / ".test" / "config" / "config.yaml")]
    done = snakemake(tmp_path, "all", "--configfile", *test_cfg)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "results" / "table_long_retrieval.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["run"], r["benchmark"]) for r in rows] == [
        (run, bench) for bench in ("dci_syn", "iiw_syn", "sv_syn") for run in ("lotlip", "short")]
    for row in rows:
        assert 0.0 <= float(row["i2t_r1"]) <= 100.0 and 0.0 <= float(row["t2i_r1"]) <= 100.0
        assert row["seed"] == "0" and row["commit"] and row["version"]
    assert {r["n_images"] for r in rows if r["benchmark"] == "dci_syn"} == {"20"}
    assert (tmp_path / "results" / "table_long_retrieval.md").is_file()
    with open(tmp_path / "results" / "table_short_tasks.csv") as fh:
        short = {(r["run"], r["benchmark"]): r for r in csv.DictReader(fh)}
    assert set(short) == {(run, b) for run in ("lotlip", "short") for b in ("coco_syn", "imagenet_syn")}
    assert short[("short", "coco_syn")]["i2t_r5"] and not short[("short", "coco_syn")]["top1"]
    assert 0.0 <= float(short[("short", "imagenet_syn")]["top1"]) <= 100.0
    with open(tmp_path / "results" / "table_dataset_stats.csv") as fh:
        stats = {r["dataset"]: r for r in csv.DictReader(fh)}
    assert stats["train (raw)"]["n_images"] == "256"
    assert float(stats["dci_syn"]["subcaptions_per_text"]) > float(stats["train (raw)"]["subcaptions_per_text"])
    assert sorted(p.name for p in (tmp_path / "results" / "shards" / "train").glob("[!.]*")) == [
        "sizes.json", "train-000000.tar", "train-000001.tar", "train-000002.tar"]

    again = snakemake(tmp_path, "all", "-n", "--configfile", *test_cfg)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr

    changed = snakemake(tmp_path, "all", "-n", "--configfile", *test_cfg, "--config", "eval={'batch_size': 8}")
    jobs = planned_jobs(changed.stdout + changed.stderr)
    assert jobs.get("evaluate") == 10 and "train" not in jobs  # only what depends on eval settings


def test_misspelled_config_key_stops_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  stpes: 3\n")
    done = snakemake(tmp_path, "all", "-n", "--configfile", str(bad))
    assert done.returncode != 0
    assert done.stderr.strip() == "lotlip: config error: config: unknown key 'train.stpes'"


def test_wrong_type_stops_with_one_line(tmp_path):
    done = snakemake(tmp_path, "all", "-n", "--configfile", str(REPO / "config" / "config.yaml"),
                     "--config", "train={'steps': 'lots'}")
    assert done.returncode != 0
    err = done.stderr.strip()
    assert err.startswith("lotlip: config error: config: key 'train.steps'") and "\n" not in err


def test_workflow_lints_clean():
    done = subprocess.run([str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "--lint"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout[-2000:]
