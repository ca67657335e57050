"""Fault 9: a Slurm job that fails or is cancelled makes its Snakemake rule fail, and the error names the job id
and its log files.

- Without a cluster (always run): the train rule's command ``lotlip train`` with a fake ``sbatch``/``squeue`` whose
  job ends FAILED or CANCELLED: one line with the job id and both log paths.
- On a real cluster (CI: ``.ci/slurm/start.sh``; skipped with the reason otherwise): the workflow's train rules with
  ``launch.executor: slurm``; one job fails inside (its image_init checkpoint is unreadable), the other is cancelled
  with ``scancel`` while it runs. And SIGTERM to ``lotlip train`` (how Snakemake stops a rule) while its job runs
  cancels the job (``scancel``): Slurm reports it CANCELLED, and the command exits 128 + 15 with one line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from lotlip.cli import main
from lotlip.train import launcher
from tests.conftest import kill_child, run_child, start_child
from tests.faults.conftest import (
    env_with_bin,
    one_error_line,
    snakemake_cmd,
    start_train,
    tiny_run,
    train_args,
    wait_until,
)
from tests.train.test_launcher import FAKE
from tests.workflow.test_slurm_pipeline import NOT_READY

LINE = re.compile(r"slurm job (\d+) \(lotlip-train-([\w-]+)\) (.*?); logs: (\S+_log\.out) and (\S+_log\.err)")


@pytest.fixture
def fake_cluster(tmp_path, monkeypatch):
    """``tests/train/test_launcher.py``'s fake Slurm: sbatch answers job 42, squeue reports $FAKE_SLURM_STATE."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name, body in FAKE.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755 | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED by 0"])
def test_train_command_names_job_and_logs_when_slurm_ends_the_job(state, fake_cluster, tiny_cfg, tmp_path,
                                                                   capsys, monkeypatch):
    monkeypatch.setenv("FAKE_SLURM_STATE", state)
    launch = json.dumps({"executor": "slurm", "log_folder": str(tmp_path / "submitit")})
    rc = main(train_args(tiny_run(tiny_cfg), tmp_path / "shards", tmp_path / "run" / "model.pt",
                         "--launch", launch))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and err.startswith("lotlip train: error: "), err
    found = LINE.search(err)
    assert found and found.group(1) == "42" and f"ended as {state.split()[0]} without a result" in err, err
    assert all(Path(p).parent.is_dir() and Path(p).parent.is_relative_to(tmp_path) for p in found.group(4, 5))
    assert not (tmp_path / "run" / "model.pt").exists()


def _job_ids(log_folder: Path) -> dict[str, str]:
    """run -> Slurm job id of the submissions under a submitit log folder (job names: lotlip-train-<run>[-...])."""
    ids = {}
    for pickle in log_folder.glob("lotlip-train-*/*/*_submitted.pkl"):
        name = pickle.parent.parent.name.removeprefix("lotlip-train-")
        run = next((r for r in ("lotlip", "short") if name == r or name.startswith(f"{r}-")), name)
        ids[run] = pickle.name.split("_")[0]
    return ids


@pytest.mark.skipif(NOT_READY is not None, reason=NOT_READY or "")
def test_failed_and_cancelled_slurm_jobs_fail_their_train_rules(tiny_world, tmp_path):
    world, captions, shards = tiny_world
    work = tmp_path / "work"
    shutil.copytree(world, work / "resources" / "images" / "train")
    (work / "results" / "captions").mkdir(parents=True)
    shutil.copy(captions, work / "results" / "captions" / "train.jsonl")
    shutil.copytree(shards, work / "results" / "shards" / "train")
    submitit = tmp_path / "submitit"
    bad_init = tmp_path / "bad_init.pt"  # present (the train rule waits for image_init), unreadable inside the job
    bad_init.write_bytes(b"not a checkpoint")
    cfg = {"train": {"batch_size": 8, "checkpoint_every": 1000},
           "experiments": {"short": {"image_init": str(bad_init)},  # fails inside the job
                           "lotlip": {"steps": 100_000}},  # runs until it is cancelled
           "select": {"experiments": ["lotlip", "short"]},
           "launch": {"executor": "slurm", "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10, "max_requeues": 0,
                      "log_folder": str(submitit)}}
    (tmp_path / "slurm.yaml").write_text(yaml.safe_dump(cfg))
    cmd = snakemake_cmd(work, "all", "--until", "train", "--keep-going", "--show-failed-logs",
                        configfiles=(str(tmp_path / "slurm.yaml"),))
    proc = start_child(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env_with_bin())
    ids: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 180
        while "lotlip" not in ids or launcher.slurm_state(ids["lotlip"]) != "RUNNING":
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.monotonic() < deadline, f"the lotlip job did not start: {ids}"
            time.sleep(0.5)
            ids = _job_ids(submitit)
        run_child(["scancel", ids["lotlip"]], check=True, timeout=60)
        output, _ = proc.communicate(timeout=180)
        ids = _job_ids(submitit)
    finally:
        kill_child(proc)  # snakemake and its rules' `lotlip train`, also after a time-out
        for job in _job_ids(submitit).values():
            run_child(["scancel", job], capture_output=True, timeout=60)
    assert proc.returncode != 0
    for run, what in (("short", f"failed: ValueError: {bad_init}: truncated or corrupt checkpoint"),
                      ("lotlip", "ended as CANCELLED without a result")):
        log = next((work / "logs" / "train" / run).glob("*.log"))
        text = log.read_text()
        found = LINE.search(text)
        assert found and found.group(1) == ids[run] and found.group(2).startswith(run), text[-2000:]
        assert what in found.group(3), text[-2000:]
        assert Path(found.group(4)).is_file() and Path(found.group(5)).is_file()  # the job's own logs
        assert "Error in rule train" in output and str(log.relative_to(work)) in output  # Snakemake names the log
        assert f"slurm job {ids[run]} " in output  # --show-failed-logs: the id on the console too
    assert not list((work / "results").rglob("model.pt"))


@pytest.mark.skipif(NOT_READY is not None, reason=NOT_READY or "")
def test_sigterm_to_the_train_command_cancels_its_running_slurm_job(tiny_cfg, tiny_world, tmp_path):
    run = tiny_run(tiny_cfg, steps=100_000, checkpoint_every=100_000)  # runs until it is cancelled
    launch = {"executor": "slurm", "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10, "max_requeues": 0,
              "log_folder": str(tmp_path / "submitit")}
    proc, lines = start_train(run, tiny_world[2], tmp_path / "run" / "model.pt", launch)
    job = None
    try:
        wait_until(lambda: any("as slurm job" in line for line in lines), 120, "the job submission", proc)
        job = re.search(r"as slurm job (\d+)", "".join(lines)).group(1)
        wait_until(lambda: launcher.slurm_state(job) == "RUNNING", 180, f"slurm job {job} running", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM, "".join(lines)[-3000:]
        states = []
        wait_until(lambda: states.append(launcher.slurm_state(job)) or states[-1] in ("CANCELLED", None), 60,
                   f"the cancellation of slurm job {job}")
        assert states[-1] == "CANCELLED" or shutil.which("sacct") is None, states  # sacct: accounting in CI
        time.sleep(0.5)  # the reader thread takes the last line
        error = one_error_line(lines)
        assert f"stopped by SIGTERM; cancelled slurm job {job} (lotlip-train-lotlip); logs: " in error, error
    finally:
        kill_child(proc)
        if job is not None:
            run_child(["scancel", job], capture_output=True, timeout=60)
