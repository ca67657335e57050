"""On a real Slurm cluster (CI: .ci/slurm/start.sh): the workflow with the Slurm profile, training submitted
through submitit, and jobs that are cancelled, time out or are preempted.

Order matters for the wall clock: a job that Slurm times out (about 70 s) is submitted by the first test and
checked by the last one, so the cancel and requeue tests (and the start of the pipeline) run while it waits.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lotlip.config import run_config, to_dict
from lotlip.train import launcher
from lotlip.train.launcher import LaunchConfig, LaunchError, TrainTask
from tests.conftest import BIN, REPO, env_with_bin, run_child, wait_until


def _cluster_state() -> str | None:
    """Why Slurm tests cannot run here, or None when a node is ready."""
    if shutil.which("sinfo") is None:
        return "Slurm is not installed (no sinfo on PATH); start a cluster with .ci/slurm/start.sh"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "the Slurm controller does not answer sinfo (start it with .ci/slurm/start.sh)"
    states = set(out.stdout.split())
    if out.returncode != 0 or not states & {"idle", "mixed", "allocated", "completing"}:
        return f"no Slurm node is up (sinfo: {out.stdout.strip() or out.stderr.strip()}); run .ci/slurm/start.sh"
    return None


NOT_READY = _cluster_state()
pytestmark = pytest.mark.skipif(NOT_READY is not None, reason=NOT_READY or "")


def _slurm(tmp_path: Path, **kw) -> LaunchConfig:
    base = {"executor": "slurm", "cpus_per_task": 1, "mem_gb": 1, "log_folder": str(tmp_path / "submitit")}
    return LaunchConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def timed_out_job(tmp_path_factory):
    """A job that ignores submitit's USR2 and Slurm's TERM, so Slurm ends it at its 1-minute limit."""
    cfg = _slurm(tmp_path_factory.mktemp("timeout"), timeout_min=1, max_requeues=0)
    job = launcher.submit(os.system, "trap '' USR2 TERM; sleep 600", cfg=cfg, name="timed-out")
    yield job, cfg, time.monotonic()
    job.cancel(check=False)


@pytest.mark.slow  # 36 s: waits for a Slurm job to start
def test_cancelled_job_raises_with_its_id_and_logs(timed_out_job, tmp_path):
    cfg = _slurm(tmp_path, timeout_min=5)
    job = launcher.submit(time.sleep, 600, cfg=cfg, name="cancelled")
    wait_until(lambda: launcher.slurm_state(job.job_id) == "RUNNING", 60, f"job {job.job_id} starting")
    # RUNNING comes before srun's step exists; cancelled earlier, srun logs "Unable to create step", not CANCELLED
    wait_until(lambda: job.paths.stdout.is_file() and "Loading pickle" in job.paths.stdout.read_text(), 60,
                f"job {job.job_id} step starting")
    run_child(["scancel", job.job_id], check=True, timeout=60)
    t0 = time.monotonic()
    with pytest.raises(LaunchError) as err:
        launcher.wait(job, cfg, "cancelled", poll_s=0.5)
    assert time.monotonic() - t0 < 30
    assert str(err.value) == (f"slurm job {job.job_id} (cancelled) ended as CANCELLED without a result; "
                              f"logs: {job.paths.stdout} and {job.paths.stderr}")
    assert "CANCELLED" in job.paths.stderr.read_text()


@pytest.mark.slow
def test_preempted_training_is_requeued_and_resumes_from_last_pt(tiny_cfg, tiny_world, tmp_path):
    _, _, shards = tiny_world
    run = run_config(tiny_cfg, "lotlip")
    run = dataclasses.replace(run, train=dataclasses.replace(run.train, steps=30, checkpoint_every=5))
    out = tmp_path / "run" / "model.pt"
    cfg = _slurm(tmp_path, timeout_min=10, gpus_per_node=1)
    job = launcher.submit(TrainTask(), to_dict(run), str(shards), str(out), cfg=cfg, name="preempted")
    wait_until((out.parent / "last.pt").is_file, 120, "a first checkpoint (last.pt)")
    run_child(["scancel", "--signal=USR2", job.job_id], check=True, timeout=60)  # what Slurm sends before preempting
    summary = launcher.wait(job, cfg, "preempted", poll_s=1)
    assert summary["steps"] == 30 and 5 <= summary["resumed_from"] < 30
    assert out.is_file() and not (out.parent / "last.pt").exists()
    logs = job.paths.stdout.read_text() + job.paths.stderr.read_text()
    assert f"Requeued job {job.job_id}" in logs and "resuming lotlip from step" in logs
    shown = run_child(["scontrol", "show", "job", job.job_id], capture_output=True, text=True, timeout=60).stdout
    assert "Restarts=1" in shown and "TresPerNode=gres:gpu:1" in shown, shown  # requeued once, on the fake GPU


SELECT = "select: {experiments: [short, lotlip]}\n"  # two runs keep the cluster test short


def _snakemake(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Snakemake with the profile; the run selection comes as a config file (a --config replaces the profile's)."""
    select = tmp_path / "select.yaml"
    select.write_text(SELECT)
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path / "work"), "--profile",
           str(REPO / "slurm"), *args, "--configfile", str(REPO / "config" / "config.yaml"),
           str(REPO / ".test" / "config" / "config.yaml"), str(select)]
    env = env_with_bin()
    return run_child(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def test_profile_asks_gpus_for_evaluation_and_training(tmp_path):
    done = _snakemake(tmp_path, "all", "-n", timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    plan = done.stdout + done.stderr
    evaluations = re.findall(r"rule evaluate:.*?resources: ([^\n]*)", plan, flags=re.S)
    assert len(evaluations) == 2 and all(r.endswith("gpu=1") for r in evaluations), evaluations
    launches = [json.loads(text) for text in re.findall(r"--launch '(\{.*?\})'", plan)]
    assert len(launches) == 2 and all(lc["executor"] == "slurm" and lc["gpus_per_node"] == 1 for lc in launches)


@pytest.mark.slow
def test_pipeline_runs_on_slurm_with_training_through_submitit(tmp_path):
    """The tiny pipeline end to end. Sized for a 2-CPU node with one fake GPU: evaluations use 1 CPU and no GPU
    (the profile's GPU requests are checked above), training jobs no GPU so both runs train at once."""
    work = tmp_path / "work"
    launch = {"executor": "slurm", "gpus_per_node": 0, "cpus_per_task": 1, "mem_gb": 2, "timeout_min": 10}
    done = _snakemake(tmp_path, "all", "--config", f"launch={launch}", "--set-threads", "evaluate=1",
                      "--set-resources", "evaluate:mem_mb=2000", "evaluate:gpu=0",
                      "--slurm-init-seconds-before-status-checks", "1")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    with open(work / "results" / "table_long_retrieval.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["run"], r["benchmark"]) for r in rows} == {
        (run, bench) for bench in ("dci_syn", "iiw_syn", "sv_syn") for run in ("lotlip", "short")}
    assert (work / "results" / "table_short_tasks.csv").is_file()
    assert (done.stdout + done.stderr).count("has been submitted with SLURM jobid") >= 15  # stages are sbatch jobs
    assert (work / "results" / "claims.csv").is_file() and (work / "results" / "table_long_texts.csv").is_file()
    for run in ("lotlip", "short"):
        train_log = (work / "logs" / "train" / run / "seed0.log").read_text()
        found = re.search(rf"submitted lotlip-train-{run} as slurm job (\d+)", train_log)
        assert found, train_log[-2000:]
        assert (work / "results" / "checkpoints" / run / "seed0" / "model.pt").is_file()
        job = run_child(["scontrol", "show", "job", found.group(1)], capture_output=True, text=True, timeout=60).stdout
        assert "JobState=COMPLETED" in job and "NumCPUs=1" in job, job


@pytest.mark.slow  # waits out Slurm's 1-minute limit (52 s when the slow tests before it are deselected)
def test_timed_out_job_raises_instead_of_hanging(timed_out_job):
    job, cfg, submitted = timed_out_job
    t0 = time.monotonic()
    with pytest.raises(LaunchError) as err:
        launcher.wait(job, cfg, "timed-out", poll_s=1)
    assert time.monotonic() - max(t0, submitted + 60) < 60  # noticed soon after the 1-minute limit
    assert str(err.value) == (f"slurm job {job.job_id} (timed-out) ended as TIMEOUT without a result; "
                              f"logs: {job.paths.stdout} and {job.paths.stderr}")
