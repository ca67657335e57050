"""Stage ``snapshot``: a study's tables, figures and claims copied into ``results/studies/<tier>/``, which git
tracks (the rest of ``results/`` is DVC's), with ``snapshot.json``: the tier, the sha256 of its resolved config,
the code's commit and version, the seeds of every run and the command that rebuilds it.

A study is a named tier (``config/studies/<study>.yaml``, config ``snapshot: true``); the README quotes numbers from
these snapshots only. The folder is replaced whole (:func:`lotlip.io.atomic_dir`): a failed or partial copy
leaves the previous snapshot as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lotlip.config import DEFAULT_TIER, ConfigError, LotlipConfig, to_dict
from lotlip.data.download import sha256_file
from lotlip.io import atomic_dir
from lotlip.plan import snapshot_command, snapshot_runs

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "snapshot.json"


def config_hash(cfg: LotlipConfig) -> str:
    """sha256 of the resolved config as JSON with sorted keys (what ``snapshot.json`` records)."""
    return hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()


def _relative(files: Sequence[Path], results: Path) -> list[Path]:
    """Each file's place under ``results`` (the tier's results folder); one outside it is refused."""
    out = []
    root = Path(results).resolve()
    for f in files:
        try:
            out.append(Path(f).resolve().relative_to(root))
        except ValueError:
            raise ValueError(f"{f}: not under the tier's results folder {results}") from None
    if len(set(out)) != len(out):
        raise ValueError("the same file is listed twice")
    return out


def write_snapshot(cfg: LotlipConfig, files: Sequence[Path], results: Path, out: Path, *,
                   commit: str | None = None, version: str | None = None) -> dict[str, Any]:
    """Copy ``files`` (the tier's tables, figures and claims, each under ``results``, keeping their place under it)
    into the folder ``out`` with ``snapshot.json``; returns what ``snapshot.json`` holds.

    ``commit`` and ``version`` default to the checkout's (:mod:`lotlip.provenance`). Nothing is written when the
    tier is the default one, when no file is given or when any file is missing.

    Raises:
        ConfigError: the default tier (only a named tier is a study).
        FileNotFoundError: one line naming the missing inputs.
        ValueError: no file given, or one outside ``results``.
    """
    if cfg.tier == DEFAULT_TIER:
        raise ConfigError("snapshot: the default tier writes no snapshot (a study is a named tier)")
    if not files:
        raise ValueError("nothing to snapshot: the tier builds no table, figure or claims check")
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise FileNotFoundError(f"cannot snapshot tier {cfg.tier!r}: missing {', '.join(missing[:3])}{more} "
                                f"(build them first: {snapshot_command(cfg)})")
    names = _relative(files, results)
    if commit is None or version is None:
        from lotlip.provenance import git_commit, package_version

        commit = git_commit(ignore=str(out)) if commit is None else commit  # its own tracked output
        version = package_version() if version is None else version
    record = {
        "tier": cfg.tier,
        "config_sha256": config_hash(cfg),
        "commit": commit,
        "lotlip_version": version,
        "model": cfg.train.model,
        "seeds": list(cfg.seeds or [cfg.train.seed]),
        "runs": snapshot_runs(cfg),
        "command": snapshot_command(cfg),
        "files": {name.as_posix(): sha256_file(f) for f, name in sorted(zip(files, names, strict=True),
                                                                           key=lambda p: p[1].as_posix())},
    }
    if SNAPSHOT_FILE in record["files"]:
        raise ValueError(f"an input is named {SNAPSHOT_FILE}, which the snapshot writes itself")
    with atomic_dir(out) as tmp:
        for f, name in zip(files, names, strict=True):
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, tmp / name)
        (tmp / SNAPSHOT_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    log.info("snapshot of tier %s: %d files in %s", cfg.tier, len(files), out)
    return record
