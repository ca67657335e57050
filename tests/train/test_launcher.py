"""The training launcher without a Slurm cluster: inline, local and debug executors, failures, validation."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import submitit

from lotlip.cli import main
from lotlip.config import ConfigError, run_config, to_dict
from lotlip.train import launcher
from lotlip.train.launcher import LaunchConfig, LaunchError, TrainTask, launch, launch_config, validate


def _cfg(tmp_path: Path, **kw) -> LaunchConfig:
    return LaunchConfig(log_folder=str(tmp_path / "logs"), **kw)


def _log_paths(message: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"(/\S+_log\.(?:out|err))", message)]


def test_inline_runs_in_this_process(tmp_path):
    assert launch(os.getpid, cfg=_cfg(tmp_path), name="x") == os.getpid()


def test_local_runs_in_a_subprocess(tmp_path):
    assert launch(os.getpid, cfg=_cfg(tmp_path, executor="local"), name="x", poll_s=0.2) != os.getpid()


def test_local_job_with_two_tasks_returns_task_0(tmp_path):
    cfg = _cfg(tmp_path, executor="local", tasks_per_node=2)
    assert launch(os.getenv, "SUBMITIT_LOCAL_GLOBALID", cfg=cfg, name="x", poll_s=0.2) == "0"


def test_debug_runs_through_submitit_in_this_process(tmp_path):
    assert launch(pow, 2, 10, cfg=_cfg(tmp_path, executor="debug"), name="x") == 1024


def test_failed_job_names_the_job_the_error_and_its_logs(tmp_path):
    with pytest.raises(LaunchError) as err:
        launch(int, "x", cfg=_cfg(tmp_path, executor="local"), name="bad", poll_s=0.2)
    msg = str(err.value)
    assert re.match(r"local job \d+ \(bad\) failed: ValueError: invalid literal for int\(\)", msg), msg
    assert "\n" not in msg
    logs = _log_paths(msg)
    assert len(logs) == 2 and all(p.is_file() for p in logs)
    assert "ValueError" in logs[1].read_text()


@pytest.mark.parametrize("overrides, message", [
    ({"executor": "kube"}, "launch.executor: 'kube' is not one of inline, local, debug, slurm"),
    ({"gpus_per_node": -1}, "launch.gpus_per_node: -1 is below the minimum 0"),
    ({"nodes": 0}, "launch.nodes: 0 is below the minimum 1"),
    ({"executor": "local", "nodes": 2}, "launch.nodes: the local executor runs on one node, not 2"),
])
def test_invalid_settings_are_one_line_errors(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as err:
        launch(os.getpid, cfg=_cfg(tmp_path, **overrides), name="x")
    assert str(err.value) == message


def test_slurm_executor_needs_slurm_commands(monkeypatch):
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match=r"^launch.executor: 'slurm' needs Slurm's sbatch and sinfo on PATH$"):
        validate(LaunchConfig(executor="slurm"))


def test_launch_config_from_json():
    cfg = launch_config('{"executor": "slurm", "gpus_per_node": 2, "sbatch": {"constraint": "a100"}}')
    assert (cfg.executor, cfg.gpus_per_node, cfg.sbatch) == ("slurm", 2, {"constraint": "a100"})
    assert launch_config(None) == LaunchConfig()
    with pytest.raises(ConfigError, match=r"^launch: unknown key 'gpus'$"):
        launch_config({"gpus": 1})
    with pytest.raises(ConfigError, match=r"^--launch: not valid JSON"):
        launch_config("{executor: slurm")


def test_slurm_profile_launch_settings_are_valid():
    import yaml

    from tests.conftest import REPO

    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    cfg = launch_config(profile["config"]["launch"])
    assert cfg.executor == "slurm" and cfg.gpus_per_node >= 1
    launcher.check_ranges(cfg, "launch")


def test_checkpoint_requeues_the_same_call():
    task = TrainTask()
    delayed = task.checkpoint({"name": "r"}, "shards", "out/model.pt")
    assert isinstance(task, submitit.helpers.Checkpointable)
    assert delayed.function is task and delayed.args == ({"name": "r"}, "shards", "out/model.pt")


# A fake Slurm on PATH: sinfo lists partitions, sacct has no accounting, squeue reports $FAKE_SLURM_STATE.
FAKE = {
    "sinfo": "printf 'main*\\ngpu\\n'",
    "sbatch": "echo 'Submitted batch job 42'",
    "srun": "exit 0",
    "sacct": "echo 'sacct: error: Slurm accounting storage is disabled' >&2; exit 1",
    "squeue": 'echo "$FAKE_SLURM_STATE"',
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name, body in FAKE.items():
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_unknown_partition_lists_the_known_ones(fake_slurm):
    validate(LaunchConfig(executor="slurm", partition="gpu"))
    with pytest.raises(ConfigError) as err:
        validate(LaunchConfig(executor="slurm", partition="gpu2"))
    assert str(err.value) == "launch.partition: 'gpu2' is not a partition of this cluster (sinfo lists: main, gpu)"


def test_sbatch_script_carries_the_cluster_settings(fake_slurm, tmp_path):
    cfg = LaunchConfig(executor="slurm", nodes=2, gpus_per_node=4, cpus_per_task=8, mem_gb=64, timeout_min=30,
                       partition="gpu", account="proj", qos="high", sbatch={"constraint": "a100"})
    text = launcher.make_executor(cfg, tmp_path, "n")._executor._make_submission_file_text("cmd", "uid")
    for flag in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--cpus-per-task=8", "--mem=64GB",
                 "--time=30", "--partition=gpu", "--account=proj", "--qos=high", "--constraint=a100",
                 "--signal=USR2@90", "--job-name=n"):
        assert f"#SBATCH {flag}\n" in text, flag
    cpu = launcher.make_executor(LaunchConfig(executor="slurm"), tmp_path, "n")._executor
    assert "gpus-per-node" not in cpu._make_submission_file_text("cmd", "uid")


def test_job_killed_by_slurm_is_reported_without_accounting(fake_slurm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SLURM_STATE", "CANCELLED by 0")
    assert launcher.slurm_state("42") == "CANCELLED"
    monkeypatch.setenv("FAKE_SLURM_STATE", "TIMEOUT")
    job = submitit.SlurmJob(folder=tmp_path, job_id="42")  # never written a result: state comes from squeue
    with pytest.raises(LaunchError) as err:
        launcher.wait(job, LaunchConfig(executor="slurm"), "r", poll_s=0.05, grace_s=0.1)
    assert str(err.value) == (f"slurm job 42 (r) ended as TIMEOUT without a result; logs: {tmp_path}/42_0_log.out "
                              f"and {tmp_path}/42_0_log.err")


def test_train_through_the_local_executor(tiny_cfg, tiny_world, tmp_path):
    _, _, shards = tiny_world
    run = run_config(tiny_cfg, "lotlip")
    summary = launcher.launch_train(run, shards, tmp_path / "run" / "model.pt", _cfg(tmp_path, executor="local"),
                                    poll_s=0.5)
    assert summary["steps"] == 4 and summary["resumed_from"] == 0
    assert (tmp_path / "run" / "model.pt").is_file()


def test_command_line_errors_are_one_line(tiny_cfg, tmp_path, capsys):
    import json

    args = ["train", "--run", json.dumps(to_dict(run_config(tiny_cfg, "lotlip"))), "--shards", str(tmp_path),
            "--out", str(tmp_path / "m.pt")]
    assert main([*args, "--launch", '{"executor": "kube"}']) == 2
    assert capsys.readouterr().err.strip() == (
        "lotlip train: error: launch.executor: 'kube' is not one of inline, local, debug, slurm")
    assert main(args) == 2  # inline: the loop's own error
    assert capsys.readouterr().err.strip() == (
        f"lotlip train: error: {tmp_path}/sizes.json: not found; build the shards first "
        f"(snakemake {tmp_path}/sizes.json)")
