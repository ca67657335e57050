"""Figure 7: the Snakemake pipeline: wall time of a full build, of a no-op re-plan, and peak RSS of each stage.

The workflow runs unmodified in a fresh temporary working directory (``snakemake -s <repo>/Snakefile -d TMP
--cores 2 TARGET --configfile ...``). Every rule's shell command calls ``lotlip <stage> ...`` through ``PATH``; a
``lotlip`` shim put first on ``PATH`` runs the real entry point as a child and appends one JSON line per job
(stage, wall seconds, the child's peak RSS from ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, exit code) to a log. That
peak is exact for the job's process (the kernel's high-water mark, not a sample); the shim adds one Python start
(~50 ms) per job. Snakemake's own peak RSS is its VmHWM, read from /proc while it runs. Then ``snakemake -n
TARGET`` on the built tree is timed a few times: the cost of a no-op re-plan.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO, VENV_BIN, peak_rss_mb, pstats_rows

GOAL_REPLAN_S = 5.0

SHIM = '''#!{python}
"""lotlip shim (bench/pipeline_bench.py): run the real lotlip, log wall time and peak RSS of the job."""
import json, os, resource, subprocess, sys, time
start = time.perf_counter()
rc = subprocess.call([{real!r}, *sys.argv[1:]])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
record = {{"stage": sys.argv[1] if len(sys.argv) > 1 else "?", "args": sys.argv[2:], "rc": rc,
          "wall_s": round(time.perf_counter() - start, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
          "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}}
with open(os.environ["LOTLIP_BENCH_JOBLOG"], "a") as fh:
    fh.write(json.dumps(record) + "\\n")
sys.exit(rc)
'''


@dataclass(frozen=True)
class PipelineSettings:
    """What figure 7 builds."""

    configfiles: tuple[str, ...] = ("config/config.yaml", ".test/config/config.yaml")
    target: str = "all"
    extra_config: tuple[str, ...] = ()  # --config KEY=VALUE overrides
    replans: int = 3
    cores: int = 2
    workdir: str | None = None  # default: a temporary folder, removed afterwards
    label: str = "test config (config/config.yaml + .test/config/config.yaml)"
    timeout_s: int = 3600
    keep: bool = False
    profile_replan: bool = False  # profile the re-plan even when it meets its goal


TEST_PIPELINE = PipelineSettings()
DEFAULT_PIPELINE = PipelineSettings(configfiles=("config/config.yaml",), label="default config (config/config.yaml)")
# quick: the first stage only (the training images) of a 64-image synthetic world
QUICK_PIPELINE = PipelineSettings(target="resources/images/train", replans=1,
                                  extra_config=("world={'n_train': 64}",),
                                  label="quick: test config, target resources/images/train, 64 images")


def write_shim(folder: Path) -> Path:
    """A ``lotlip`` executable in ``folder`` that logs each job (see module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    real = shutil.which("lotlip", path=str(VENV_BIN)) or str(VENV_BIN / "lotlip")
    shim = folder / "lotlip"
    shim.write_text(SHIM.format(python=sys.executable, real=real))
    shim.chmod(0o755)
    return shim


def _snakemake(workdir: Path, s: PipelineSettings, *extra: str) -> list[str]:
    cmd = [str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", str(s.cores),
           s.target, *extra, "--configfile", *[str(REPO / c) for c in s.configfiles]]
    return cmd + (["--config", *s.extra_config] if s.extra_config else [])


def _run_watched(cmd: list[str], env: dict, log: Path, timeout_s: int) -> tuple[int, float, float | None]:
    """(exit code, wall seconds, the process's own peak RSS MB polled from /proc)."""
    start = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        peak = None
        while proc.poll() is None:
            peak = peak_rss_mb(proc.pid) or peak
            if time.perf_counter() - start > timeout_s:
                proc.kill()
            time.sleep(0.2)
    return proc.returncode, time.perf_counter() - start, peak


def _stages(jobs: list[dict]) -> list[dict]:
    by_stage: dict[str, list[dict]] = {}
    for job in jobs:
        by_stage.setdefault(job["stage"], []).append(job)
    return [{"stage": stage, "jobs": len(js), "wall_s_total": round(sum(j["wall_s"] for j in js), 1),
             "wall_s_max": round(max(j["wall_s"] for j in js), 1), "cpu_s_total": round(sum(j["cpu_s"] for j in js), 1),
             "peak_rss_mb": max(j["peak_rss_mb"] for j in js)}
            for stage, js in sorted(by_stage.items(), key=lambda kv: -sum(j["wall_s"] for j in kv[1]))]


def bench_pipeline(s: PipelineSettings) -> dict:
    """Figure 7: build ``s.target`` from scratch with the shim, then time no-op re-plans."""
    root = Path(s.workdir) if s.workdir else Path(tempfile.mkdtemp(prefix="lotlip-bench-pipeline-"))
    workdir, shim_dir = root / "work", root / "shim"
    workdir.mkdir(parents=True, exist_ok=True)
    write_shim(shim_dir)
    joblog = root / "jobs.jsonl"
    joblog.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{shim_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "LOTLIP_BENCH_JOBLOG": str(joblog)}
    try:
        rc, wall, snake_peak = _run_watched(_snakemake(workdir, s), env, root / "build.log", s.timeout_s)
        if rc != 0:
            raise RuntimeError(f"snakemake exited {rc}:\n{(root / 'build.log').read_text()[-3000:]}")
        jobs = [json.loads(line) for line in joblog.read_text().splitlines()] if joblog.is_file() else []
        replans, replan_peak, nothing, reasons = [], None, True, []
        for i in range(s.replans):
            rc, seconds, peak = _run_watched(_snakemake(workdir, s, "-n"), env, root / f"replan{i}.log", 600)
            text = (root / f"replan{i}.log").read_text()
            nothing = nothing and rc == 0 and "Nothing to be done" in text
            reasons = reasons or _replan_reasons(text)
            replans.append(round(seconds, 2))
            replan_peak = max(filter(None, [replan_peak, peak]), default=None)
        slow = replans and statistics.median(replans) > GOAL_REPLAN_S
        profile = _profile_replan(workdir, s, env, root) if slow or s.profile_replan else None
    finally:
        if not s.keep and not s.workdir:
            shutil.rmtree(root, ignore_errors=True)
    return {"label": s.label, "target": s.target, "configfiles": list(s.configfiles),
            "extra_config": list(s.extra_config), "cores": s.cores, "build_wall_s": round(wall, 1),
            "snakemake_peak_rss_mb": snake_peak, "jobs": len(jobs), "failed_jobs": sum(j["rc"] != 0 for j in jobs),
            "stages": _stages(jobs), "replan_s": replans,
            "replan_median_s": round(statistics.median(replans), 2) if replans else None,
            "replan_peak_rss_mb": replan_peak, "replan_nothing_to_do": nothing, "replan_reasons": reasons,
            "goal_replan_s": GOAL_REPLAN_S,
            "replan_profile": profile}


def _replan_reasons(log: str, limit: int = 5) -> list[str]:
    """Distinct ``reason:`` lines of a dry run that planned jobs (e.g. the workflow's code changed meanwhile)."""
    seen: list[str] = []
    for line in log.splitlines():
        line = line.strip()[:200]
        if line.startswith("reason:") and line not in seen:
            seen.append(line)
    return seen[:limit]


def _profile_replan(workdir: Path, s: PipelineSettings, env: dict, root: Path) -> dict:
    """Where a no-op re-plan's seconds go: its top-level imports (``python -X importtime``, cumulative seconds)
    and a cProfile of the same command (top functions by self time)."""
    import pstats

    cmd = _snakemake(workdir, s, "-n")
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    imports = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2][1:]
            if not name.startswith(" "):  # depth 0: imported by the Snakefile, its rules or Snakemake itself
                imports.append({"module": name, "cumulative_s": round(int(parts[1]) / 1e6, 3)})
    out = root / "replan.prof"
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), *cmd], env=env, cwd=REPO,
                   capture_output=True, timeout=600)
    return {"imports": sorted(imports, key=lambda i: -i["cumulative_s"])[:10],
            "cprofile": pstats_rows(pstats.Stats(str(out)), rows=12, sort="tottime") if out.is_file() else []}
