"""Fault 3: a stage that cannot write its output (disk full, read-only folder) fails, leaves no partial output and
no temp files, and Snakemake's state stays consistent (only the failed stage is planned again; a rerun builds it).

"Disk full" is simulated with ``RLIMIT_FSIZE``: writes past the limit fail with EFBIG, for root too (chmod does not
stop root). "Read-only" is a folder without write permission, or, as root, an output whose parent is a file.
Every stage runs in one subprocess (``tests.faults._inject --stages``: one import, a limit per stage).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lotlip.config import to_dict
from lotlip.world.build import build_benchmark
from tests.conftest import REPO, planned_jobs
from tests.faults.conftest import env_with_bin, file_size_limit, snakemake, temp_leftovers, tiny_run, train_args

ROOT = os.geteuid() == 0
PAYLOAD = os.urandom(300_000)
TINY_LIMIT, BIG_LIMIT = 64, 1 << 20  # bytes: below every output / above log.csv, below a checkpoint


def _stage_argvs(tiny_cfg, world, captions, shards, model, bench, evals, out: Path) -> dict[str, tuple[list, Path]]:
    """name -> (lotlip argv writing under ``out``, the output it would write)."""
    world_cfg = {"world": to_dict(tiny_cfg.world)}
    bench_cfg = {**world_cfg, "benchmarks": {"dci_syn": {"n_groups": 2, "group_size": 3}}}
    run = tiny_run(tiny_cfg, steps=2, checkpoint_every=1, batch_size=8)
    outs = {"world": out / "world", "benchmark": out / "bench", "relabel": out / "captions.jsonl",
            "shards": out / "shards", "train": out / "run" / "model.pt", "evaluate": out / "eval.json",
            "report": out / "table.csv", "stats": out / "stats.csv"}
    argvs = {
        "world": ["world", "--cfg", json.dumps(world_cfg), "--out", str(outs["world"])],
        "benchmark": ["synthetic-benchmark", "--cfg", json.dumps(bench_cfg), "--name", "dci_syn", "--out",
                      str(outs["benchmark"])],
        "relabel": ["relabel", "--cfg", "{}", "--world", str(world), "--out", str(outs["relabel"])],
        "shards": ["shards", "--cfg", json.dumps({"shards": {"samples_per_shard": 40}}), "--world", str(world),
                   "--captions", str(captions), "--out", str(outs["shards"])],
        "train": train_args(run, shards, outs["train"]),
        "evaluate": ["evaluate", "--cfg", json.dumps({"train": {"threads": 1}}), "--run", "lotlip", "--name",
                     "dci_syn", "--checkpoint", str(model), "--benchmark", str(bench), "--out", str(outs["evaluate"])],
        "report": ["report", "--table", "long_retrieval", "--out", str(outs["report"]), str(evals)],
        "stats": ["stats", "--cfg", "{}", "--world", str(world), "--captions", str(captions), "--out",
                  str(outs["stats"]), str(bench)],
    }
    return {name: (argvs[name], outs[name]) for name in argvs}


def _archive(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = len(PAYLOAD)
        tar.addfile(info, io.BytesIO(PAYLOAD))
    return path


def _blocked(folder: Path) -> Path:
    """A place where nothing can be created: a read-only folder, or (root ignores modes) below a regular file."""
    folder.mkdir(parents=True)
    if ROOT:
        (folder / "blocker").write_text("a file, not a folder")
        return folder / "blocker"
    folder.chmod(0o555)
    return folder


STAGES = ["world", "benchmark", "relabel", "shards", "train", "evaluate", "report", "stats", "download", "extract"]


@pytest.fixture(scope="module")
def stage_results(tiny_cfg, tiny_world, reference_model, tmp_path_factory):
    """Every stage once against a full disk and once against a read-only folder (one subprocess)."""
    world, captions, shards = tiny_world
    tmp = tmp_path_factory.mktemp("writefail")
    bench = tmp / "inputs" / "bench"
    build_benchmark(tiny_cfg.benchmarks["dci_syn"], tiny_cfg.world, bench)
    evals = tmp / "inputs" / "eval.json"
    archive = _archive(tmp / "inputs" / "big.tar")
    spec, outputs = {}, {}
    inputs = (tiny_cfg, world, captions, shards, reference_model, bench, evals)
    prep = _stage_argvs(*inputs, tmp / "inputs")["evaluate"][0]  # the report stage reads its result
    spec["prepare"] = {"argv": prep[: prep.index("--out") + 1] + [str(evals)], "limit": None}
    readonly = _blocked(tmp / "readonly")
    for kind, base in (("full", tmp / "full"), ("readonly", readonly)):
        limit = None if kind == "readonly" else TINY_LIMIT
        for name, (argv, out) in _stage_argvs(*inputs, base).items():
            spec[f"{kind}-{name}"] = {"argv": argv, "limit": BIG_LIMIT if name == "train" and limit else limit}
            outputs[f"{kind}-{name}"] = out
        outputs[f"{kind}-download"] = base / "data" / "file.bin"
        spec[f"{kind}-download"] = {"call": "lotlip.data.download:download", "limit": limit and 64_000,
                                    "args": ["URL", str(outputs[f"{kind}-download"])],
                                    "kwargs": {"retries": 2, "backoff": 0}}
        outputs[f"{kind}-extract"] = base / "extracted"
        spec[f"{kind}-extract"] = {"call": "lotlip.data.extract:extract", "limit": limit and 64_000,
                                   "args": [str(archive), str(outputs[f"{kind}-extract"])]}
    return spec, outputs, tmp


@pytest.fixture(scope="module")
def ran(stage_results, served):
    spec, outputs, tmp = stage_results
    url = served.add("file.bin", PAYLOAD)
    for entry in spec.values():
        if entry.get("args", [None])[0] == "URL":
            entry["args"][0] = url
    (tmp / "spec.json").write_text(json.dumps(spec))
    try:
        done = subprocess.run([sys.executable, "-m", "tests.faults._inject", "--stages", str(tmp / "spec.json"),
                               str(tmp / "results.json")], cwd=REPO, env=env_with_bin(), capture_output=True,
                              text=True, timeout=600)
    finally:
        if not ROOT:
            (tmp / "readonly").chmod(0o755)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp / "results.json").read_text())
    assert results["prepare"]["rc"] == 0, results["prepare"]
    return results, outputs, tmp / "readonly" / ("blocker" if ROOT else "")


@pytest.mark.parametrize("stage", STAGES)
def test_full_disk_fails_the_stage_and_leaves_nothing(ran, stage):
    results, outputs, _ = ran
    result, out = results[f"full-{stage}"], outputs[f"full-{stage}"]
    assert result["rc"] != 0, f"{stage} succeeded on a full disk"
    assert not out.exists(), f"partial output {out}"
    assert temp_leftovers(out.parent) == []
    if stage == "train":
        assert not list(out.parent.glob("*.pt")), "a checkpoint was published"  # logs may remain
    if stage == "download":
        assert {p.name for p in out.parent.iterdir()} <= {"file.bin.part"}  # the resume state of a download


@pytest.mark.parametrize("stage", STAGES)
def test_full_disk_error_names_the_cause(ran, stage):
    results, outputs, _ = ran
    error = results[f"full-{stage}"]["error"]
    assert "File too large" in error or "No space left" in error, error  # EFBIG here, ENOSPC on a real disk
    if stage == "train":
        assert "last.pt" in error, error  # torch's own error names neither the file nor the cause
    if stage == "download":
        assert "giving up" not in error, error  # a local write error is not retried


@pytest.mark.parametrize("stage", STAGES)
def test_read_only_folder_fails_the_stage_naming_the_path(ran, stage):
    results, outputs, blocked = ran
    result, out = results[f"readonly-{stage}"], outputs[f"readonly-{stage}"]
    assert result["rc"] != 0, f"{stage} succeeded in a read-only folder"
    reasons = ("Not a directory", "File exists") if ROOT else ("Permission denied",)
    assert any(r in result["error"] for r in reasons), result
    assert str(blocked) in result["error"], result  # the error names where it could not write
    assert not out.exists()


def test_failed_stage_leaves_snakemake_consistent(tiny_world, tmp_path):
    """Through the workflow: the shards rule hits a full disk; its output and temp folder are gone and Snakemake
    plans exactly that rule again (no incomplete-file complaint)."""
    world, captions, _ = tiny_world
    work = tmp_path / "work"
    shutil.copytree(world, work / "resources" / "world" / "train")
    (work / "results" / "captions").mkdir(parents=True)
    shutil.copy(captions, work / "results" / "captions" / "train.jsonl")
    until = ("all", "--until", "shards")
    failed = snakemake(work, *until, preexec_fn=file_size_limit(48 * 1024))
    assert failed.returncode != 0
    assert "Error in rule shards" in failed.stderr, failed.stderr[-3000:]
    logs = "".join(p.read_text() for p in (work / "logs").rglob("*.log"))
    assert "File too large" in logs
    leftovers = [p for p in (work / "results").rglob("*") if p.name.startswith(".") or "shards" in p.parts]
    assert leftovers == [], leftovers
    plan = snakemake(work, *until, "-n")  # exactly the failed stage again, no incomplete-file complaint
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert planned_jobs(plan.stdout + plan.stderr) == {"shards": 1}
