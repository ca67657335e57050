"""Run a training job in this process or submit it through submitit (local, debug, Slurm) and wait for it.

``launch_train`` blocks until the run ends and returns its summary. A submitted run is a
:class:`TrainTask` (``submitit.helpers.Checkpointable``): on a time-out or preemption submitit calls its
``checkpoint``, which requeues the same call, and training resumes from ``<out dir>/last.pt``. A job that
fails, is cancelled or hits its time limit raises :class:`LaunchError` naming the job id and its log files.
On Slurm the job state is read from ``sacct`` (accounting) or ``squeue`` (recent jobs), so a job killed by
Slurm is noticed even without accounting, where submitit alone would wait forever.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import FailedJobError, UncompletedJobError

from lotlip.config import (
    EXECUTORS,
    ConfigError,
    LaunchConfig,
    RunConfig,
    check_launch_strings,
    check_ranges,
    load_section,
    parse_json,
    to_dict,
)

log = logging.getLogger(__name__)

# Slurm states after which a job without a result will never write one (a requeued job goes back to PENDING).
FINAL_STATES = frozenset({"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
                          "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "TIMEOUT"})


class LaunchError(RuntimeError):
    """A submitted job failed, was cancelled, timed out or vanished; the message names its id and logs."""


def launch_config(data: dict | str | None = None) -> LaunchConfig:
    """A LaunchConfig from a mapping or its JSON text (``--launch``), loaded and checked by the one config loader
    (:func:`lotlip.config.load_section`): unknown keys, wrong types, ranges and job-script strings are one-line
    errors."""
    if isinstance(data, str):
        data = parse_json(data, "--launch")
    return load_section(LaunchConfig, data, origin="launch")


def _partitions() -> list[str]:
    """Partition names from ``sinfo`` (the default one is marked ``*`` there)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"launch.partition: cannot list Slurm partitions ({exc})") from None
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or ["no output"])[0]
        raise ConfigError(f"launch.partition: cannot list Slurm partitions (sinfo: {first})")
    return [p.strip().rstrip("*") for p in out.stdout.split()]


def validate(cfg: LaunchConfig) -> None:
    """Check ranges, the executor, the strings of the job script and (on Slurm) that the partition exists;
    one-line :class:`ConfigError`."""
    if cfg.executor not in EXECUTORS:
        raise ConfigError(f"launch.executor: {cfg.executor!r} is not one of {', '.join(EXECUTORS)}")
    check_ranges(cfg, "launch")
    check_launch_strings(cfg)  # also checked by load_config: the workflow refuses them before planning
    if cfg.executor == "local" and cfg.nodes != 1:
        raise ConfigError(f"launch.nodes: the local executor runs on one node, not {cfg.nodes}")
    if cfg.executor != "slurm":
        return
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise ConfigError("launch.executor: 'slurm' needs Slurm's sbatch and sinfo on PATH")
    if cfg.partition is not None:
        known = _partitions()
        if cfg.partition not in known:
            raise ConfigError(f"launch.partition: {cfg.partition!r} is not a partition of this cluster "
                              f"(sinfo lists: {', '.join(known) or 'none'})")


def _tasks_per_node(cfg: LaunchConfig) -> int:
    return cfg.tasks_per_node or max(1, cfg.gpus_per_node)


def make_executor(cfg: LaunchConfig, folder: Path, name: str) -> submitit.AutoExecutor:
    """A submitit executor for ``cfg.executor`` (named explicitly: submitit would pick Slurm when present)."""
    executor = submitit.AutoExecutor(folder=folder, cluster=cfg.executor, slurm_max_num_timeout=cfg.max_requeues,
                                     local_max_num_timeout=cfg.max_requeues)
    params: dict[str, Any] = {"name": name, "timeout_min": cfg.timeout_min, "nodes": cfg.nodes,
                              "tasks_per_node": _tasks_per_node(cfg), "gpus_per_node": cfg.gpus_per_node}
    if cfg.executor == "slurm":
        params.update(cpus_per_task=cfg.cpus_per_task, mem_gb=cfg.mem_gb, slurm_partition=cfg.partition,
                      slurm_account=cfg.account, slurm_qos=cfg.qos, slurm_signal_delay_s=cfg.signal_delay_s,
                      slurm_additional_parameters=dict(cfg.sbatch) or None)
        if not cfg.gpus_per_node:
            params.pop("gpus_per_node")  # sbatch --gpus-per-node=0 is refused by some sites
    executor.update_parameters(**params)
    return executor


def job_folder(cfg: LaunchConfig, name: str) -> Path:
    """A fresh folder per submission: Slurm job ids restart after a controller wipe, old results must not match."""
    base = Path(cfg.log_folder) / name
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=base)).resolve()


def submit(fn: Callable, *args: Any, cfg: LaunchConfig, name: str) -> submitit.Job:
    """Submit ``fn(*args)`` without waiting (not for ``inline``)."""
    if cfg.executor == "inline":
        raise ConfigError("launch.executor: 'inline' runs in this process; there is nothing to submit")
    job = make_executor(cfg, job_folder(cfg, name), name).submit(fn, *args)
    log.info("submitted %s as %s job %s (logs: %s)", name, cfg.executor, job.job_id, job.paths.stdout)
    return job


def slurm_state(job_id: str) -> str | None:
    """The job's Slurm state: ``sacct`` when accounting runs, else ``squeue`` (finished jobs stay visible there
    for ``MinJobAge`` seconds); ``None`` when neither knows the job."""
    for cmd in (["sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id],
                ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = out.stdout.split("\n") if out.returncode == 0 else []
        states = [line.split()[0] for line in lines if line.strip()]
        if states:
            return states[-1].rstrip("+")  # "CANCELLED by 0" -> CANCELLED
    return None


def _tasks(job: submitit.Job) -> list[submitit.Job]:
    return [job.task(i) for i in range(job.num_tasks)]


def _has_results(job: submitit.Job) -> bool:
    return all(t.paths.result_pickle.exists() for t in _tasks(job))


def _logs(job: submitit.Job) -> str:
    paths = job.task(0).paths
    return f"logs: {paths.stdout} and {paths.stderr}"


def _error_line(text: str) -> str:
    """The last ``SomeError: message`` line of a traceback, else its first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception|Interrupt|Exit)\b", line):
            return line
    return lines[0] if lines else "no error message"


def _wait_slurm(job: submitit.Job, name: str, poll_s: float, grace_s: float) -> None:
    """Poll until every task wrote its result; raise as soon as Slurm says the job ended without one."""
    final_since: float | None = None
    unknown_since = time.monotonic()
    while not _has_results(job):
        state = slurm_state(job.job_id)
        now = time.monotonic()
        if state is not None:
            unknown_since = now
        if state in FINAL_STATES:
            final_since = final_since or now
            if now - final_since >= grace_s:  # give the result file (shared file systems) a moment
                raise LaunchError(f"slurm job {job.job_id} ({name}) ended as {state} without a result; {_logs(job)}")
        else:
            final_since = None
        if now - unknown_since > 120:
            raise LaunchError(f"slurm job {job.job_id} ({name}) is unknown to sacct and squeue for 120 s; "
                              f"{_logs(job)}")
        time.sleep(poll_s)


def wait(job: submitit.Job, cfg: LaunchConfig, name: str, poll_s: float = 2.0, grace_s: float = 3.0) -> Any:
    """Block until ``job`` ends; return task 0's result or raise :class:`LaunchError`."""
    try:
        if cfg.executor == "slurm":
            _wait_slurm(job, name, poll_s, grace_s)
        results = job.results()
    except FailedJobError as exc:
        raise LaunchError(f"{cfg.executor} job {job.job_id} ({name}) failed: {_error_line(str(exc))}; "
                          f"{_logs(job)}") from exc
    except UncompletedJobError as exc:
        raise LaunchError(f"{cfg.executor} job {job.job_id} ({name}) ended without a result "
                          f"(state {job.state}); {_logs(job)}") from exc
    return results[0]


def launch(fn: Callable, *args: Any, cfg: LaunchConfig, name: str, poll_s: float = 2.0) -> Any:
    """Run ``fn(*args)`` as ``cfg`` says and return its result (task 0's for a multi-process job)."""
    validate(cfg)
    if cfg.executor == "inline":
        return fn(*args)
    with _deferred_signals() as pending:  # a signal during sbatch would leave a job no one cancels
        job = submit(fn, *args, cfg=cfg, name=name)
    try:
        if pending:
            raise Interrupted(pending[0])
        return wait(job, cfg, name, poll_s=poll_s)
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM under sigterm_interrupts: do not leave the job running
        with _deferred_signals():  # a second signal must not stop scancel halfway
            try:
                job.cancel(check=True)
                done = f"cancelled {cfg.executor} job {job.job_id} ({name})"
            except (OSError, subprocess.CalledProcessError) as err:
                done = f"could not cancel {cfg.executor} job {job.job_id} ({name}): {err}"
        raise Interrupted(getattr(exc, "signum", signal.SIGINT), f"{done}; {_logs(job)}") from None


class TrainTask(submitit.helpers.Checkpointable):
    """The submitted training call; ``checkpoint`` requeues the same call, which resumes from ``last.pt``."""

    def __call__(self, run: dict, shard_dir: str, out_path: str, text_init: str | None = None) -> dict:
        from lotlip.config import run_config_from_dict
        from lotlip.train import distributed
        from lotlip.train.loop import train

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        distributed.setup()
        try:
            return train(run_config_from_dict(run), shard_dir, out_path, text_init)
        finally:
            distributed.cleanup()

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        log.warning("time-out or preemption: requeueing the training call (it resumes from last.pt)")
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def launch_train(run: RunConfig, shard_dir: str | Path, out_path: str | Path, cfg: LaunchConfig,
                 poll_s: float = 2.0, text_init: str | Path | None = None) -> dict:
    """Train ``run`` as ``cfg`` says (blocking) and return the training summary."""
    if cfg.executor == "inline":
        from lotlip.train.loop import train

        validate(cfg)
        return train(run, shard_dir, out_path, text_init)
    args = (to_dict(run), str(Path(shard_dir).resolve()), str(Path(out_path).resolve()),
            str(Path(text_init).resolve()) if text_init else None)
    return launch(TrainTask(), *args, cfg=cfg, name=f"lotlip-train-{run.name}", poll_s=poll_s)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a launch; the message says what became of the submitted job. ``signum`` gives the
    exit status of the command (128 + signum)."""

    def __init__(self, signum: int = signal.SIGINT, detail: str = ""):
        self.signum = int(signum)
        super().__init__(f"stopped by {signal.Signals(signum).name}" + (f"; {detail}" if detail else ""))


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _deferred_signals() -> Iterator[list[int]]:
    """SIGINT and SIGTERM are recorded (in the yielded list) instead of interrupting the block; the previous
    handlers are restored afterwards, and an ignored signal stays ignored. Handlers, not ``SIG_IGN``: child
    processes started inside (sbatch, scancel, a local job) get the default dispositions. Outside the main thread
    it does nothing."""
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield pending
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (how Snakemake stops a rule) raises ``KeyboardInterrupt`` inside, so :func:`launch` cancels the job
    it submitted instead of leaving it running; the previous handler is restored afterwards. Outside the main
    thread (where no handler can be set) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
