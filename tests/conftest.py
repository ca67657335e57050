"""Shared fixtures: tiny configs and a tiny built world (built once per session).

``LOTLIP_NO_SKIPS=1`` (set by ``.ci/run``) turns every skipped test into a failure naming the skip's reason:
in CI a missing Slurm cluster or img2dataset must fail the run, not pass it quietly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from lotlip.config import load_config

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # this venv: lotlip, snakemake, dvc

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


SLOW_S = 30.0  # what `slow` means (pyproject.toml): a test past this on 2 cores is marked, so `-m "not slow"` is quick
_unmarked_slow: list[tuple[float, str]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``LOTLIP_NO_SKIPS=1`` a skip is reported as a failure (CI never skips what it claims to test); unmarked
    tests slower than ``SLOW_S`` are noted for the summary."""
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and report.duration > SLOW_S and item.get_closest_marker("slow") is None:
        _unmarked_slow.append((report.duration, item.nodeid))
    if report.skipped and os.environ.get("LOTLIP_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but LOTLIP_NO_SKIPS=1 (CI) forbids skips: {reason}"


def pytest_terminal_summary(terminalreporter) -> None:
    """Name the tests that took longer than ``SLOW_S`` without a ``slow`` mark (a reminder, never a failure)."""
    if _unmarked_slow:
        terminalreporter.write_sep("-", f"tests over {SLOW_S:.0f} s without @pytest.mark.slow")
        for duration, nodeid in sorted(_unmarked_slow, reverse=True):
            terminalreporter.write_line(f"{duration:7.1f} s  {nodeid}")


# --- child processes ---------------------------------------------------------------------------------------------
# A test's child process (snakemake, `lotlip train`, a forking fault harness, pytest) runs in its own session with
# the default signal dispositions, and every wait on it has a timeout that kills its whole process group:
# - a test run as a background job (`nohup make test &`) ignores SIGINT and SIGQUIT, and ignored signals survive
#   exec (Python's ``restore_signals`` resets only SIGPIPE and SIGXFSZ): a child would never see the SIGINT
#   a test sends it, and the test would wait for it forever;
# - ``subprocess.run(timeout=)`` kills only the child: snakemake's trainers or a submitit job would outlive it.

CHILD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                 signal.SIGALRM)


def default_signals() -> None:
    """``preexec_fn``: default dispositions of the signals tests (and Snakemake, Slurm) send, none blocked."""
    for signum in CHILD_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def start_child(argv: Sequence[str], *, preexec_fn: Callable[[], None] | None = None,
                **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen`` in a new session (process group = its pid, see :func:`kill_child`) with
    :func:`default_signals`, then ``preexec_fn``. Pair it with :func:`wait_child` / :func:`kill_child`."""

    def preexec() -> None:
        default_signals()
        if preexec_fn is not None:
            preexec_fn()

    return subprocess.Popen(argv, start_new_session=True, preexec_fn=preexec, **popen)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is alive (zombies aside; Linux ``/proc``)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


def kill_child(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop the child's whole process group (what it started too) and reap the child: SIGTERM first (Snakemake
    cancels its Slurm jobs, ``lotlip train`` the job it submitted), SIGKILL to what is left after ``grace_s``.
    Safe after the child exited: a process group id is not reused while the group has members."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)  # reaps the child itself (else it stays a zombie member)
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def wait_child(proc: subprocess.Popen, timeout: float) -> int:
    """``proc.wait(timeout)``; on time-out (or any interruption) the process group is killed, then it raises."""
    try:
        return proc.wait(timeout=timeout)
    except BaseException:
        kill_child(proc)
        raise


def run_child(argv: Sequence[str], *, timeout: float, input: str | bytes | None = None,
              capture_output: bool = False, check: bool = False, **popen: Any) -> subprocess.CompletedProcess:
    """``subprocess.run`` for tests: :func:`start_child`, and the whole process group is killed when the child ends,
    when ``timeout`` passes (then ``subprocess.TimeoutExpired`` as from ``subprocess.run``) or on any interruption,
    so that nothing it started (a trainer, a local submitit job) outlives it."""
    if capture_output:
        popen.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if input is not None:
        popen["stdin"] = subprocess.PIPE
    proc = start_child(argv, **popen)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_child(proc)
        out = err = None
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            out, err = proc.communicate(timeout=10)  # what it wrote before it was killed
        raise subprocess.TimeoutExpired(proc.args, timeout, output=out, stderr=err) from None
    except BaseException:
        kill_child(proc)
        raise
    kill_child(proc)  # what it left running
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def env_with_bin(**extra: str) -> dict[str, str]:
    """The environment with this venv's bin first on PATH (``lotlip``, ``snakemake``, ``dvc``) and ``extra`` set."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    """The repository's workflow run in ``workdir`` on 2 cores (config files go in ``args``)."""
    return [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", *args]


def run_snakemake(workdir: Path, *args: str, timeout: float, env: dict[str, str] | None = None,
                  **popen: Any) -> subprocess.CompletedProcess:
    """:func:`snakemake_cmd` to the end as a :func:`run_child` (text output captured; on time-out its jobs die too)."""
    return run_child(snakemake_cmd(workdir, *args), capture_output=True, text=True, timeout=timeout,
                     env=env if env is not None else env_with_bin(), **popen)


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str,
               proc: subprocess.Popen | None = None) -> None:
    """Poll ``predicate``; fail with the subprocess's stderr if it exits first, and kill it on time-out."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read()[-3000:] if proc.stderr else ""
            pytest.fail(f"the process exited ({proc.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            if proc is not None:
                kill_child(proc)
            pytest.fail(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.1)
