"""Shared helpers: machine info and provenance, load average, peak-RSS probes, timing statistics."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lotlip.provenance import git_commit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = Path(sys.executable).parent
PACKAGES = ("lotlip", "torch", "open_clip_torch", "webdataset", "snakemake", "numpy", "pillow")


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _mem_total_gb() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return None


def machine_info(threads: int) -> dict:
    """Where and with what the numbers were measured (CPU, memory, versions, commit, date, load)."""
    return {"platform": platform.platform(), "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "mem_total_gb": _mem_total_gb(), "torch_threads": threads, "versions": _versions(),
            "git_commit": git_commit(str(REPO)),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "load_average_start": load_average()}


def _status_kb(field: str, pid: int | str = "self") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_mb() -> float | None:
    """Resident memory of this process now (MB)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else round(kb / 1024, 1)


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process since start or since :func:`reset_peak_rss` (MB)."""
    kb = _status_kb("VmHWM", pid)
    return None if kb is None else round(kb / 1024, 1)


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def release_free_memory() -> None:
    """Return the C heap's free pages to the kernel (glibc ``malloc_trim``), so that RSS counts live memory only."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_peak(fn: Callable[[], object]) -> tuple[object, float | None]:
    """(result, peak RSS increase in MB over the RSS before the call); None where the kernel cannot tell.

    Free heap pages are released first: otherwise memory freed earlier but still resident could be reused by
    ``fn`` without raising RSS, and its peak would be understated.
    """
    import gc

    gc.collect()
    release_free_memory()
    before = rss_mb()
    ok = reset_peak_rss()
    result = fn()
    peak = peak_rss_mb()
    if not ok or before is None or peak is None:
        return result, None
    return result, round(peak - before, 1)


def throughput(items: int, seconds: float) -> float:
    """Items per second, rounded."""
    return round(items / max(seconds, 1e-12), 1)


def median(values: list[float]) -> float:
    """Median (0.0 for no values)."""
    return statistics.median(values) if values else 0.0


def pstats_rows(stats, rows: int = 12, sort: str = "cumulative") -> list[dict]:
    """Top functions of a ``pstats.Stats`` (file:line(function), calls, self and cumulative seconds)."""
    stats.sort_stats(sort)
    out = []
    for func in stats.fcn_list[:rows]:
        calls, _, tottime, cumtime, _ = stats.stats[func]
        filename, line, name = func
        where = f"{Path(filename).name}:{line}({name})" if line else name
        out.append({"function": where, "calls": calls, "self_s": round(tottime, 3), "cumulative_s": round(cumtime, 3)})
    return out


def cprofile_top(fn: Callable[[], object], rows: int = 12, sort: str = "cumulative") -> list[dict]:
    """Run ``fn`` under cProfile; its top functions (see :func:`pstats_rows`)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        fn()
    finally:
        profiler.disable()
    return pstats_rows(pstats.Stats(profiler), rows, sort)
