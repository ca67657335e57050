"""Fault 1: training killed by SIGKILL, SIGTERM or SIGINT resumes from its last checkpoint, loses at most one
checkpoint interval and ends with the same weights as an uninterrupted run (CPU, same seed).

The run is the real ``lotlip train`` command of the train rule in a subprocess (``tests.faults._inject``); a hook
stops it before step ``PAUSE`` (the kill lands between two checkpoints, never by luck of timing) and the test
sends the signal. The rerun is ``lotlip.train.loop.train`` on the same folder.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from lotlip.train import loop
from tests.faults.conftest import (
    BIN,
    KILL_EVERY,
    KILL_STEPS,
    PAUSE,
    assert_same_weights,
    env_with_bin,
    temp_leftovers,
    tiny_run,
    train_args,
    wait_until,
)


@pytest.fixture(scope="module")
def killed(request, fault_lab, kill_run, tiny_world):
    """Scenario ``request.param`` (a signal name) killed before step PAUSE, then rerun to the end."""
    after_kill = fault_lab.killed(request.param)
    out = fault_lab.out(request.param)
    summary = loop.train(kill_run, tiny_world[2], out)
    return {"after_kill": after_kill, "summary": summary, "out": out}


@pytest.mark.parametrize("killed", ["SIGKILL", "SIGTERM", "SIGINT"], indirect=True)
def test_killed_training_resumes_to_the_uninterrupted_weights(killed, reference_model):
    after = killed["after_kill"]
    assert after["rc"] != 0
    assert "model.pt" not in after["files"], "a killed run must not leave a final model"
    assert after["last_step"] == 2, after
    summary = killed["summary"]
    assert summary["resumed_from"] == after["last_step"] and summary["steps"] == KILL_STEPS
    assert PAUSE - summary["resumed_from"] <= KILL_EVERY  # at most one checkpoint interval lost
    assert_same_weights(killed["out"], reference_model)
    assert not (killed["out"].parent / "last.pt").exists()  # the resumable state is dropped once done
    assert temp_leftovers(killed["out"].parent) == []


@pytest.mark.parametrize("killed", ["SIGKILL", "SIGTERM", "SIGINT"], indirect=True)
def test_log_lists_each_step_once_after_a_resume(killed):
    """Rows flushed after the resumed checkpoint (an interrupt flushes the log) are dropped, then redone."""
    rows = (killed["out"].parent / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,")
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, KILL_STEPS + 1))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_sigterm_to_the_train_rule_cancels_its_submitted_job(tiny_cfg, tiny_world, tmp_path):
    """Snakemake stops a running rule with SIGTERM; the job it submitted (here: local executor) must stop too."""
    run = tiny_run(tiny_cfg, steps=400, checkpoint_every=400)
    launch = json.dumps({"executor": "local", "log_folder": str(tmp_path / "submitit")})
    proc = subprocess.Popen([str(BIN / "lotlip"), *train_args(run, tiny_world[2], tmp_path / "run" / "model.pt",
                                                              "--launch", launch)],
                            stderr=subprocess.PIPE, text=True, env=env_with_bin())
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    submitted = lambda: any("as local job" in line for line in lines)  # noqa: E731
    wait_until(submitted, 120, "the job submission", proc)
    job_pid = int(re.search(r"as local job (\d+)", "".join(lines)).group(1))
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 5
        while _alive(job_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(job_pid), f"the submitted job (pid {job_pid}) still runs after its rule was stopped"
    finally:
        if _alive(job_pid):
            os.kill(job_pid, signal.SIGKILL)
