"""Fault 1: training killed by SIGKILL, SIGTERM or SIGINT resumes from its last checkpoint, loses at most one
checkpoint interval and ends with the same weights as an uninterrupted run (CPU, same seed).

The run is the real ``lotlip train`` command of the train rule in a subprocess (``tests.faults._inject``); a hook
stops it before step ``PAUSE`` (the kill lands between two checkpoints, never by luck of timing) and the test
sends the signal. The rerun is ``lotlip.train.loop.train`` on the same folder.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import pytest

from lotlip.train import loop
from tests.conftest import REPO, kill_child, run_child, wait_child
from tests.faults.conftest import (
    KILL_EVERY,
    KILL_STEPS,
    PAUSE,
    assert_same_weights,
    one_error_line,
    start_train,
    temp_leftovers,
    tiny_run,
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
    """Snakemake stops a running rule with SIGTERM; the job it submitted (here: local executor) must stop too, and
    ``lotlip train`` exits with 128 + SIGTERM and one line naming the job."""
    run = tiny_run(tiny_cfg, steps=400, checkpoint_every=400)
    launch = {"executor": "local", "log_folder": str(tmp_path / "submitit")}
    proc, lines = start_train(run, tiny_world[2], tmp_path / "run" / "model.pt", launch)
    job_pid = None
    try:
        submitted = lambda: any("as local job" in line for line in lines)  # noqa: E731
        wait_until(submitted, 120, "the job submission", proc)
        job_pid = int(re.search(r"as local job (\d+)", "".join(lines)).group(1))
        # a running rule: the job is training (a job killed while its interpreter still starts prints its own
        # traceback through lotlip's import frames, which is not what this test is about)
        training = lambda: (tmp_path / "run" / "log.csv").exists()  # noqa: E731
        wait_until(training, 120, "the job's first training step", proc)
        proc.send_signal(signal.SIGTERM)
        assert wait_child(proc, timeout=60) == 128 + signal.SIGTERM, "".join(lines)[-3000:]
        deadline = time.monotonic() + 5
        while _alive(job_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(job_pid), f"the submitted job (pid {job_pid}) still runs after its rule was stopped"
        time.sleep(0.5)  # the reader thread takes the last line
        error = one_error_line(lines, shared=True)  # the local job's stderr is ours
        assert f"stopped by SIGTERM; cancelled local job {job_pid} (lotlip-train-lotlip)" in error, error
    finally:
        kill_child(proc)  # the job is in the same process group


class _FakeJob:
    job_id = "7"
    num_tasks = 1
    cancelled = False

    def cancel(self, check: bool = True) -> None:
        self.cancelled = True

    def task(self, i):
        return type("Task", (), {"paths": type("Paths", (), {"stdout": "7.out", "stderr": "7.err"})()})()


def test_sigterm_while_the_job_is_being_submitted_still_cancels_it(monkeypatch):
    """A signal that lands while sbatch runs is held until the job id is known, then the job is cancelled."""
    from lotlip.config import LaunchConfig
    from lotlip.train import launcher

    job = _FakeJob()

    def submit(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # Snakemake stops the rule while sbatch runs
        time.sleep(0.2)  # a handler would run here
        return job

    monkeypatch.setattr(launcher, "submit", submit)
    monkeypatch.setattr(launcher, "wait", lambda *a, **k: pytest.fail("waited on a job it was told to stop"))
    with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM; cancelled local job 7") as err:
        with launcher.sigterm_interrupts():
            launcher.launch(print, cfg=LaunchConfig(executor="local"), name="x")
    assert job.cancelled and err.value.signum == signal.SIGTERM


def test_sigint_resume_works_when_the_caller_ignores_sigint(tmp_path):
    """`nohup make test &` starts pytest with SIGINT ignored, and ignored signals survive exec: the SIGINT scenario's
    training would ignore the test's SIGINT and the test wait for its end. tests.conftest.start_child gives
    children the default dispositions; here pytest runs that scenario with SIGINT ignored, as a background job."""
    test = "tests/faults/test_kill_resume.py::test_killed_training_resumes_to_the_uninterrupted_weights[SIGINT]"
    done = run_child([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--basetemp",
                      str(tmp_path / "pytest"), test], cwd=REPO, capture_output=True, text=True, timeout=400,
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "1 passed" in done.stdout
