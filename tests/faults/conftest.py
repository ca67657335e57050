"""Helpers of the fault-injection suite: tiny runs, a reference (uninterrupted) run, subprocesses with a fault
armed, file-size limits and workflow invocations.

``tiny_cfg`` and ``tiny_world`` come from ``tests/conftest.py`` (96 training images in 3 shards).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from lotlip.config import RunConfig, run_config, to_dict
from tests.conftest import BIN, REPO, env_with_bin, kill_child, run_child, start_child, wait_child, wait_until
from tests.conftest import snakemake_cmd as workflow_cmd

__all__ = ["BIN", "env_with_bin", "wait_until"]  # re-exported to the fault tests
KILL_STEPS, KILL_EVERY, KILL_BATCH = 6, 2, 8  # interrupted runs: 6 steps of 8 samples, last.pt after steps 2, 4


def tiny_run(tiny_cfg, name: str = "lotlip", **train) -> RunConfig:
    """Run ``name`` of the tiny config with ``train`` overrides."""
    rc = run_config(tiny_cfg, name)
    return dataclasses.replace(rc, train=dataclasses.replace(rc.train, **train))


@pytest.fixture(scope="session")
def kill_run(tiny_cfg) -> RunConfig:
    return tiny_run(tiny_cfg, steps=KILL_STEPS, checkpoint_every=KILL_EVERY, batch_size=KILL_BATCH)


@pytest.fixture(scope="session")
def reference_model(kill_run, tiny_world, tmp_path_factory) -> Path:
    """model.pt of ``kill_run`` trained without interruption (CPU, same seed)."""
    from lotlip.train import loop

    out = tmp_path_factory.mktemp("reference") / "model.pt"
    loop.train(kill_run, tiny_world[2], out)
    return out


def state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(path: Path, reference: Path) -> None:
    got, want = state_dict(path), state_dict(reference)
    assert got.keys() == want.keys()
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"{len(different)} tensors differ from the uninterrupted run, e.g. {different[:3]}"


def temp_leftovers(folder: Path) -> list[str]:
    """Names of atomic-write temp files/folders (``.<name>.XXXX.tmp``) left in ``folder``."""
    return sorted(p.name for p in folder.glob(".*.tmp")) if folder.is_dir() else []


def train_args(run: RunConfig, shards: Path, out: Path, *extra: str) -> list[str]:
    """``lotlip train`` arguments as the train rule passes them."""
    return ["train", "--run", json.dumps(to_dict(run)), "--shards", str(shards), "--out", str(out), *extra]


def stderr_lines(proc: subprocess.Popen) -> list[str]:
    """The child's stderr lines (``text=True``) as they arrive, read by a daemon thread."""
    import threading

    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    return lines


def start_train(run: RunConfig, shards: Path, out: Path, launch: dict) -> tuple[subprocess.Popen, list[str]]:
    """``lotlip train`` with ``launch`` as a child (:func:`tests.conftest.start_child`) and its stderr lines."""
    proc = start_child([str(BIN / "lotlip"), *train_args(run, shards, out, "--launch", json.dumps(launch))],
                       stderr=subprocess.PIPE, text=True, env=env_with_bin())
    return proc, stderr_lines(proc)


def one_error_line(lines: list[str], prefix: str = "lotlip train: error: ", shared: bool = False) -> str:
    """The single ``prefix`` line of a command's stderr (its log lines aside); no traceback. ``shared``: a local
    submitit job writes to the same stderr (its own traceback when it is cancelled); no frame of lotlip's code."""
    errors = [line.strip() for line in lines if line.startswith(prefix)]
    if shared:
        tracebacks = [line for line in lines if line.lstrip().startswith('File "') and "/lotlip/" in line]
    else:
        tracebacks = [line for line in lines if "Traceback" in line]
    assert len(errors) == 1 and not tracebacks, "".join(lines)[-3000:]
    return errors[0]


PAUSE = 3  # signal scenarios: stopped before step 3 of 6, the last checkpoint was written after step 2

# name -> (fault hook, signal). The K-th torch.save of a run: 1 and 2 write last.pt (after steps 2 and 4), 3 the
# final model.pt.
SCENARIOS: dict[str, tuple[dict[str, int], int]] = {
    "SIGKILL": ({"pause_at_step": PAUSE}, signal.SIGKILL),
    "SIGTERM": ({"pause_at_step": PAUSE}, signal.SIGTERM),
    "SIGINT": ({"pause_at_step": PAUSE}, signal.SIGINT),
    "cut-checkpoint": ({"cut_save": 2}, signal.SIGKILL),
    "cut-model": ({"cut_save": 3}, signal.SIGKILL),
}


class FaultLab:
    """Every scenario's ``lotlip train`` as one child process of a single forking parent (one import for all)."""

    def __init__(self, run: RunConfig, shards: Path, root: Path):
        self.run, self.shards, self.root = run, shards, root
        self.parent: subprocess.Popen | None = None
        self.results: dict[str, dict] = {}

    def out(self, name: str) -> Path:
        return self.root / name / "run" / "model.pt"

    def start(self) -> None:
        spec = {}
        for name, (hook, _) in SCENARIOS.items():
            folder = self.root / name
            folder.mkdir(parents=True)
            env = {"FAULT_READY": str(folder / "ready")}
            env.update({f"FAULT_{k.upper()}": str(v) for k, v in hook.items()})
            spec[name] = {"argv": train_args(self.run, self.shards, self.out(name)), "env": env, "dir": str(folder)}
        (self.root / "spec.json").write_text(json.dumps(spec))
        with open(self.root / "parent.txt", "w") as log:
            self.parent = start_child([sys.executable, "-m", "tests.faults._inject", "--fork",
                                       str(self.root / "spec.json")], cwd=REPO, env=env_with_bin(),
                                      stdout=log, stderr=subprocess.STDOUT)

    def _output(self, name: str) -> str:
        parts = [self.root / name / "output.txt", self.root / "parent.txt"]
        return "\n".join(p.read_text()[-3000:] for p in parts if p.is_file())

    def _wait(self, path: Path, what: str, timeout_s: float = 300) -> None:
        deadline, name = time.monotonic() + timeout_s, path.parent.name
        while not path.exists():
            status = path.parent / "status"
            if status.exists() and path != status:
                pytest.fail(f"{name} exited ({status.read_text()}) before {what}: {self._output(name)}")
            if self.parent.poll() is not None and not path.exists():
                pytest.fail(f"the forking parent exited before {what}: {self._output(name)}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen within {timeout_s} s: {self._output(name)}")
            time.sleep(0.1)

    def killed(self, name: str) -> dict:
        """Kill scenario ``name`` at its fault: exit status, files left, step of last.pt, temp file sizes."""
        if name in self.results:
            return self.results[name]
        folder = self.root / name
        self._wait(folder / "ready", f"the armed fault of {name}")
        os.kill(int((folder / "pid").read_text()), SCENARIOS[name][1])
        self._wait(folder / "status", f"the end of {name}")
        run_dir = self.out(name).parent
        last = run_dir / "last.pt"
        self.results[name] = {
            "rc": int((folder / "status").read_text()), "files": sorted(p.name for p in run_dir.iterdir()),
            "last_step": torch.load(last, weights_only=True)["step"] if last.is_file() else None,
            "temp_sizes": {p.name: p.stat().st_size for p in run_dir.glob(".*.tmp")}}
        return self.results[name]

    def close(self) -> None:
        for name in SCENARIOS:
            folder = self.root / name
            if (folder / "pid").exists() and not (folder / "status").exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int((folder / "pid").read_text()), signal.SIGKILL)
        if self.parent is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                wait_child(self.parent, timeout=30)
            kill_child(self.parent)  # the forking parent and any scenario left over


@pytest.fixture(scope="session")
def fault_lab(kill_run, tiny_world, tmp_path_factory):
    lab = FaultLab(kill_run, tiny_world[2], tmp_path_factory.mktemp("faultlab"))
    lab.start()
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``tests.http_fixture``'s 127.0.0.1 file server, shared by a module's tests."""
    from http.server import ThreadingHTTPServer
    from threading import Thread

    from tests.http_fixture import FileServer, _handler

    state = FileServer(tmp_path_factory.mktemp("served"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def file_size_limit(limit: int) -> Callable[[], None]:
    """``preexec_fn``: writes past ``limit`` bytes of any file fail with EFBIG ("disk full"), even for root."""

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the default action would kill the process instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return preexec


def snakemake_cmd(workdir: Path, *args: str, configfiles: tuple[str, ...] = ()) -> list[str]:
    """The repository's workflow in ``workdir`` on the tiny test config (+ ``configfiles``), 2 cores."""
    return workflow_cmd(workdir, *args, "--configfile", str(REPO / "config" / "config.yaml"),
                        str(REPO / ".test" / "config" / "config.yaml"), *configfiles)


def snakemake(workdir: Path, *args: str, configfiles: tuple[str, ...] = (), timeout: float = 600,
              **popen) -> subprocess.CompletedProcess:
    """Run :func:`snakemake_cmd` to the end (``tests.conftest.run_child``: on time-out its jobs are killed too)."""
    return run_child(snakemake_cmd(workdir, *args, configfiles=configfiles), capture_output=True, text=True,
                     env=popen.pop("env", env_with_bin()), timeout=timeout, **popen)
