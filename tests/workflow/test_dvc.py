"""DVC: push artifacts, clone, plain `dvc pull`, and Snakemake re-runs nothing but the cheap tables (byte-identical)."""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from lotlip.artifacts import dvc_yaml, restore_pulled_mtimes
from lotlip.config import load_config
from tests.conftest import BIN, REPO, env_with_bin, planned_jobs, run_child

ENV = env_with_bin(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
CONFIGS = ["config/config.yaml", ".test/config/config.yaml"]
SELECT = {"experiments": ["short", "lotlip"]}  # two runs keep the test short; dvc.yaml must name only these
TINY = ["--config", "train={'steps': 2}", f"select={SELECT}"]
REPORT_RULES = {"table", "table_dataset_stats", "paper_table", "sweep_figure", "maps_figure", "claims", "table_html",
                "claims_html", "landing", "all"}


def sh(*cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    done = run_child(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return sh(str(BIN / "snakemake"), "--cores", "2", "all", *args, "--configfile", *CONFIGS, *TINY, cwd=cwd)


def test_dvc_yaml_matches_the_default_config():
    """The committed dvc.yaml versions the default tier (another tier adds its stage: `lotlip dvc-yaml FILES`)."""
    assert (REPO / "dvc.yaml").read_text() == dvc_yaml(load_config(REPO / "config" / "config.yaml"),
                                                       ["config/config.yaml"])


def _clone(src: Path, dest: Path, store: Path) -> Path:
    sh("git", "clone", "-q", str(src), str(dest), cwd=src.parent)
    sh(str(BIN / "dvc"), "remote", "modify", "--local", "local", "url", str(store), cwd=dest)
    return dest


@pytest.mark.slow
def test_pull_in_a_fresh_clone_rebuilds_tables_without_retraining(tmp_path):
    store = tmp_path / "store"
    origin = _clone(REPO, tmp_path / "origin", store)
    (origin / "dvc.yaml").write_text(dvc_yaml(load_config(*(origin / c for c in CONFIGS), {"select": SELECT})))
    snakemake(origin)
    sh(str(BIN / "dvc"), "commit", "-f", "-q", "artifacts", "snakemake-metadata", cwd=origin)  # as the README
    sh(str(BIN / "dvc"), "push", "-q", cwd=origin)
    sh("git", "add", "-A", cwd=origin)
    sh("git", "commit", "-qm", "artifacts", cwd=origin)

    clone = _clone(origin, tmp_path / "clone", store)
    sh(str(BIN / "dvc"), "pull", "-q", cwd=clone)  # plain DVC: the workflow restores the recorded times itself
    plan = snakemake(clone, "-n")
    assert "outputs checked out by DVC got back the times Snakemake recorded" in plan.stderr
    jobs = planned_jobs(plan.stdout + plan.stderr)
    assert set(jobs) <= REPORT_RULES and jobs["table"] == 2  # tables, figures, claims: cheap, not versioned
    snakemake(clone)
    for table in ("table_long_retrieval.csv", "table_short_tasks.csv", "table_dataset_stats.csv"):
        assert (clone / "results" / table).read_bytes() == (origin / "results" / table).read_bytes(), table

    # An artifact edited after the pull keeps its new time: what depends on it runs again.
    with open(clone / "results" / "checkpoints" / "short" / "seed0" / "model.pt", "ab") as fh:
        fh.write(b"edited")
    plan = snakemake(clone, "-n")
    jobs = planned_jobs(plan.stdout + plan.stderr)
    assert jobs.get("evaluate", 0) >= 1 and "train" not in jobs, jobs
    assert "run=lotlip" not in plan.stdout + plan.stderr

    # Artifacts missing from the remote are named, and only their part is rebuilt.
    for lost in ("checkpoints/short/seed0/model.pt", "eval/short/seed0/dci_syn.json"):
        digest = hashlib.md5((origin / "results" / lost).read_bytes()).hexdigest()
        (store / "files" / "md5" / digest[:2] / digest[2:]).unlink()
    partial = _clone(origin, tmp_path / "partial", store)
    shutil.rmtree(partial / ".dvc" / "cache", ignore_errors=True)
    pulled = sh(str(BIN / "lotlip"), "pull", cwd=partial)
    assert "missing from the remote: results/checkpoints/short" in pulled.stderr
    assert "missing from the remote: results/eval/short" in pulled.stderr
    plan = snakemake(partial, "-n")
    planned = plan.stdout + plan.stderr
    jobs = planned_jobs(planned)
    assert jobs["train"] == 1 and jobs["evaluate"] == 1 and set(jobs) - {"train", "evaluate"} <= REPORT_RULES
    assert "run=lotlip" not in planned


def _recorded_output(root: Path, endtime: float = 1_000_000.0) -> Path:
    """``root/results/x.json`` with a Snakemake job record giving its end time."""
    import base64
    import json

    out = root / "results" / "x.json"
    out.parent.mkdir(parents=True)
    out.write_text("{}")
    meta = root / ".snakemake" / "metadata"
    meta.mkdir(parents=True)
    (meta / base64.urlsafe_b64encode(b"results/x.json").decode()).write_text(json.dumps({"endtime": endtime}))
    return out


def test_restore_pulled_mtimes_needs_dvc_lock_and_leaves_files_alone_without(tmp_path):
    out = _recorded_output(tmp_path)
    assert restore_pulled_mtimes(tmp_path) == 0  # no dvc.lock: not a DVC checkout, nothing was pulled
    assert out.stat().st_mtime > 1_000_000.0
