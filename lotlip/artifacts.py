"""Artifacts with DVC: pull them, then give Snakemake back the timestamps its decisions rest on.

``dvc pull`` restores files with the pull time as modification time, so Snakemake would see inputs newer than
the outputs built from them and re-run everything downstream. Snakemake's own job records
(``.snakemake/metadata``, versioned with the artifacts) hold each output's completion time; restoring those
times restores the original order exactly, while Snakemake's params/code/input triggers still compare the
records with the current workflow, so a changed config still re-runs what it affects. The workflow does it
itself before planning (:func:`restore_pulled_mtimes`, for outputs DVC reports unchanged), so a plain
``dvc pull`` is enough; :func:`pull` (``lotlip pull``) also names what the remote lacks.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
from pathlib import Path

from lotlip import plan
from lotlip.config import LotlipConfig

log = logging.getLogger(__name__)

METADATA = Path(".snakemake") / "metadata"


def _decode(name: str) -> str:
    return base64.urlsafe_b64decode(name.encode() + b"=" * (-len(name) % 4)).decode()


def _set_time(path: Path, when: float) -> None:
    if path.is_dir():
        for root, _, files in os.walk(path):
            for f in files:
                os.utime(Path(root) / f, (when, when), follow_symlinks=False)
    os.utime(path, (when, when), follow_symlinks=False)


def _recorded_outputs(workdir: Path) -> list[tuple[Path, float]]:
    """(output, job end time) of every Snakemake job record whose output exists (a record that does not decode
    is skipped: Snakemake will re-run its job)."""
    outputs = []
    for record_path in sorted((workdir / METADATA).iterdir()):
        try:
            when = json.loads(record_path.read_text()).get("endtime")
            target = workdir / _decode(record_path.name)
        except (ValueError, UnicodeDecodeError):
            continue
        if when is not None and target.exists():
            outputs.append((target, float(when)))
    return outputs


def _dvc_view(workdir: Path) -> tuple[list[Path], list[Path]] | None:
    """(DVC-tracked outs, workspace paths that differ from ``dvc.lock``) by DVC's own comparison; None on error."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(workdir)) as repo:
            outs = [workdir / out.def_path for out in repo.index.outs]
            status = repo.data_status(granular=True, untracked_files="no")
    except DvcException as exc:
        log.warning("dvc data status failed (%s); pulled artifacts keep their pull times", exc)
        return None
    changes = status.get("uncommitted", {})
    changed = [workdir / p.rstrip("/") for kind in ("modified", "added", "deleted", "unknown")
               for p in changes.get(kind, [])]
    return outs, changed


def _related(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def restore_pulled_mtimes(workdir: str | Path = ".", slack_s: float = 1.0) -> int:
    """After a plain ``dvc pull``: give pulled outputs back their recorded times; returns how many were restored.

    Called by the workflow before it plans. An output whose modification time is later than the end time of the
    job that wrote it was either checked out by DVC or edited since. Only outputs whose content DVC reports
    unchanged from ``dvc.lock`` get their time back; an edited one keeps its time, so Snakemake re-runs what
    depends on it. Cheap when nothing was pulled: one ``stat`` per recorded output, DVC is not consulted.
    """
    workdir = Path(workdir)
    if not (workdir / "dvc.lock").is_file() or not (workdir / METADATA).is_dir():
        return 0
    late = [(path, when) for path, when in _recorded_outputs(workdir) if path.stat().st_mtime > when + slack_s]
    if not late:
        return 0
    view = _dvc_view(workdir)
    if view is None:
        return 0
    outs, changed = view
    restored = 0
    for path, when in late:
        if not any(out == path or out in path.parents for out in outs):
            continue  # not versioned by DVC: not pulled
        if any(_related(path, c) for c in changed):
            log.info("%s: changed since the DVC checkout; keeping its time", path)
            continue
        _set_time(path, when)
        restored += 1
    return restored


def artifact_paths(cfg: LotlipConfig) -> list[str]:
    """Every expensive Snakemake output the tier builds, one DVC out each (one missing artifact, one rebuild).

    Only what ``lotlip.plan`` selects (runs, released models, benchmarks, fetched data and weights), under the
    tier's roots. Tables, figures and the claims check are not here: they are cheap and rebuilt from these,
    byte-identical. Snakemake's job records are shared by the tiers: :func:`dvc_yaml` versions them once.
    """
    runs, models = plan.trained_runs(cfg), plan.eval_models(cfg)
    res, rsc = plan.tier_paths(cfg).results, plan.tier_paths(cfg).resources
    paths = [f"{rsc}/images/train", f"{res}/captions", f"{res}/shards/train"] if runs else []
    paths += [f"{rsc}/benchmarks/{b}" for b in plan.benchmarks(cfg)]
    paths += [plan.DATA_ROOT] if plan.real_benchmarks(cfg) else []
    paths += [plan.MODELS_DIR] if plan.downloaded_models(cfg) else []
    paths += [f"{res}/checkpoints/{r}" for r in runs]
    paths += [f"{res}/eval/{r}" for r in sorted(runs + models)]
    return paths


METADATA_STAGE = "snakemake-metadata"
DVC_YAML_HEADER = """\
# Generated by `lotlip dvc-yaml` from the workflow configs; do not edit by hand.
# DVC versions the expensive artifacts; Snakemake alone owns the DAG. One frozen stage per tier (its outputs lie
# under the tier's own roots, so tiers coexist) and one for Snakemake's job records, which the tiers share; DVC
# never runs them. `dvc commit` records the artifacts' hashes in dvc.lock, `dvc push` uploads them, `dvc pull`
# restores them, and the workflow gives them back Snakemake's recorded times before it plans, so nothing re-runs
# (README: Artifacts with DVC).
stages:
"""


def tier_stage(cfg: LotlipConfig) -> str:
    """The dvc.yaml stage holding a tier's artifacts: ``artifacts`` (default tier) or ``artifacts-<tier>``."""
    return "artifacts" if cfg.tier == plan.DEFAULT_TIER else f"artifacts-{cfg.tier}"


def _stage_lines(name: str, cmd: str, outs: list[str]) -> list[str]:
    lines = [f"  {name}:", f"    cmd: {cmd}", "    frozen: true", "    outs:"]
    for path in outs:
        lines += [f"      - {path}:", "          persist: true"]
    return lines


def dvc_yaml(cfg: LotlipConfig, configfiles: list[str] | None = None, existing: str = "") -> str:
    """The text of ``dvc.yaml`` with ``cfg``'s tier stage (re)written and the other tiers' stages of ``existing``
    kept; ``configfiles`` (beyond config/config.yaml) go into the stage's command."""
    import yaml

    extra = [str(f) for f in configfiles or [] if Path(f).as_posix() != "config/config.yaml"]
    cmd = "snakemake --cores 2 all" + (" --configfile config/config.yaml " + " ".join(extra) if extra else "")
    stages = (yaml.safe_load(existing) or {}).get("stages", {}) if existing else {}
    stages[tier_stage(cfg)] = {"cmd": cmd, "outs": [{p: {}} for p in artifact_paths(cfg)]}
    stages.pop(METADATA_STAGE, None)
    lines = [DVC_YAML_HEADER.rstrip("\n")]
    for name in sorted(stages):
        stage = stages[name]
        lines += _stage_lines(name, stage["cmd"], [next(iter(out)) if isinstance(out, dict) else str(out)
                                                  for out in stage.get("outs", [])])
    lines += _stage_lines(METADATA_STAGE, "snakemake --cores 2 all", [METADATA.as_posix()])
    return "\n".join(lines) + "\n"


def _failed_targets(lines: list[str]) -> list[str]:
    """The paths ``dvc checkout`` lists under "Checkout failed for following targets:"."""
    starts = [i for i, line in enumerate(lines) if "Checkout failed for following targets:" in line]
    if not starts:
        return []
    missing = []
    for line in lines[starts[0] + 1:]:
        if not line.strip() or line.startswith(("Is your cache", "<http")):
            break
        missing.append(line.strip())
    return missing


def pull(workdir: str | Path = ".", remote: str | None = None) -> dict:
    """Fetch what the remote has, check out every artifact it can, name those it cannot, restore timestamps.

    A missing artifact is left absent, so Snakemake rebuilds exactly that part (and what depends on it).
    """
    remote_args = ["--remote", remote] if remote else []
    fetched = subprocess.run(["dvc", "fetch", *remote_args], cwd=workdir, capture_output=True, text=True)
    checked = subprocess.run(["dvc", "checkout"], cwd=workdir, capture_output=True, text=True)
    missing = _failed_targets((checked.stdout + checked.stderr).splitlines())
    if fetched.returncode != 0 and not missing:
        raise RuntimeError(f"dvc fetch failed: {(fetched.stderr or fetched.stdout).strip()[-500:]}")
    restored = restore_pulled_mtimes(workdir)
    return {"missing": missing, "restored": restored}
