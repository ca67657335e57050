"""Run ``lotlip <stage> ...`` in a subprocess with a fault hook armed by environment variables.

``python -m tests.faults._inject <lotlip CLI arguments>`` behaves like the ``lotlip`` command the workflow rules
call, except that it can stop at a chosen point and wait there to be killed (it touches ``$FAULT_READY`` first).
``python -m tests.faults._inject --fork SPEC.json`` imports the package once, then forks one such process per
entry of SPEC (``{name: {"argv": [...], "env": {...}, "dir": folder}}``): each child writes ``pid`` and its
output into its folder, and its exit status into ``status`` when it ends. ``--stages SPEC.json OUT.json`` runs
stages one after another, each under its own file-size limit (see :func:`run_stages`). Hooks:

- ``FAULT_PAUSE_AT_STEP=N``: training stops before step N (steps 0..N-1 are done);
- ``FAULT_CUT_SAVE=K``: the K-th ``torch.save`` writes only the first half of its bytes (flushed to disk), as a
  process killed in the middle of writing a checkpoint leaves it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path


def _wait_to_be_killed() -> None:
    Path(os.environ["FAULT_READY"]).touch()
    while True:
        time.sleep(0.5)


def _arm_pause(at_step: int) -> None:
    from lotlip.train import loop

    real = loop.parallel_train_batches

    def paused(*args, start_step: int = 0, **kwargs):
        for i, batch in enumerate(real(*args, start_step=start_step, **kwargs)):
            if start_step + i >= at_step:
                _wait_to_be_killed()
            yield batch

    loop.parallel_train_batches = paused


def _arm_cut_save(nth: int) -> None:
    import torch

    real = torch.save
    calls = [0]

    def cut_save(obj, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            buf = io.BytesIO()
            real(obj, buf, *args, **kwargs)
            data = buf.getvalue()
            with open(f, "wb") if isinstance(f, str | os.PathLike) else contextlib.nullcontext(f) as fh:
                fh.write(data[: len(data) // 2])  # f: a path or the file object torch.save was given
                fh.flush()
                os.fsync(fh.fileno())
            _wait_to_be_killed()
        return real(obj, f, *args, **kwargs)

    torch.save = cut_save


def main(argv: list[str]) -> int:
    if os.environ.get("FAULT_PAUSE_AT_STEP"):
        _arm_pause(int(os.environ["FAULT_PAUSE_AT_STEP"]))
    if os.environ.get("FAULT_CUT_SAVE"):
        _arm_cut_save(int(os.environ["FAULT_CUT_SAVE"]))
    from lotlip.cli import main as lotlip_main

    return lotlip_main(argv)


def fork_all(spec_path: str) -> int:
    """One child process per scenario of the spec, forked after the heavy imports (they dominate the run time)."""
    import json
    import traceback

    import lotlip.cli  # noqa: F401
    import lotlip.train.launcher  # noqa: F401
    import lotlip.train.loop  # noqa: F401

    spec = json.loads(Path(spec_path).read_text())
    children = {}
    for entry in spec.values():
        folder = Path(entry["dir"])
        pid = os.fork()
        if pid == 0:  # the child runs one scenario and never returns into this loop
            rc = 1
            try:
                log = os.open(folder / "output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.environ.update(entry["env"])
                rc = main(entry["argv"])
            except BaseException:  # noqa: BLE001 - report anything, KeyboardInterrupt included
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc if isinstance(rc, int) else 1)
        (folder / "pid").write_text(str(pid))
        children[pid] = folder
    while children:
        pid, status = os.waitpid(-1, 0)
        (children.pop(pid) / "status").write_text(str(os.waitstatus_to_exitcode(status)))
    return 0


def run_stages(spec_path: str, out_path: str) -> int:
    """Run each stage of SPEC (``{name: {"argv": [...]} or {"call": "module:function", "args": [...],
    "kwargs": {...}}, "limit": bytes or null}}``) with writes past ``limit`` bytes of any file failing (EFBIG, as on
    a full disk); record ``{name: {"rc", "error"}}`` in OUT: ``rc`` is what the process would exit with
    (an exception escaping means 1) and ``error`` its message (one-line errors printed by the CLI included)."""
    import contextlib
    import importlib
    import json
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    from lotlip.cli import main as lotlip_main

    results = {}
    for name, entry in json.loads(Path(spec_path).read_text()).items():
        printed = io.StringIO()
        if entry.get("limit") is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (entry["limit"], hard))
        try:
            with contextlib.redirect_stderr(printed):
                if "argv" in entry:
                    rc = lotlip_main(entry["argv"])
                else:
                    module, function = entry["call"].split(":")
                    getattr(importlib.import_module(module), function)(*entry["args"], **entry.get("kwargs", {}))
                    rc = 0
            error = printed.getvalue().strip()
        except Exception as exc:  # noqa: BLE001 - what the stage dies with is the result
            rc, error = 1, f"{type(exc).__name__}: {exc}"
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        results[name] = {"rc": rc, "error": error}
    Path(out_path).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stages"]:
        sys.exit(run_stages(sys.argv[2], sys.argv[3]))
    if sys.argv[1:2] == ["--fork"]:
        sys.exit(fork_all(sys.argv[2]))
    sys.exit(main(sys.argv[1:]))
