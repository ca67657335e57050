"""What produced a result: package version, git commit, config and seed."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch


def package_version() -> str:
    try:
        return version("lotlip")
    except PackageNotFoundError:
        return "unknown"


@functools.cache
def git_commit(cwd: str | None = None, ignore: str | None = None) -> str:
    """The code's commit (``+dirty`` when tracked files changed), ``unknown`` when not run from a checkout.

    ``ignore``: a path whose changes do not count (a tracked output being rewritten, e.g. a study snapshot that
    Snakemake removed before its job ran)."""
    where = cwd or str(Path(__file__).resolve().parent)
    scope = [":(top)", f":(exclude){Path(ignore).resolve()}"] if ignore else []
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *scope], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def provenance(config: dict | None = None, seed: int | None = None) -> dict:
    """The provenance block every result file carries."""
    return {
        "lotlip_version": package_version(),
        "commit": git_commit(),
        "seed": seed,
        "config": config,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
    }
