"""End to end: the workflow on the tiny test config in a temporary directory."""

import csv
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, REPO, env_with_bin, planned_jobs, run_child, snakemake_cmd


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = env_with_bin()
    cmd = snakemake_cmd(workdir, *args)
    return run_child(cmd, capture_output=True, text=True, env=env, timeout=900)


TEST_CFG = [str(REPO / "config" / "config.yaml"), str(REPO / ".test" / "config" / "config.yaml")]
VERDICTS = {"supported (1 seed)", "contradicted (1 seed)", "inconclusive"}  # the test config: 1 seed


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_pipeline_builds_every_table_figure_and_claim_then_plans_nothing(tmp_path):
    from lotlip.config import load_config

    cfg = load_config(*TEST_CFG)
    runs = sorted(cfg.experiments)
    done = snakemake(tmp_path, "all", "--configfile", *TEST_CFG)
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results"
    rows = _rows(results / "table_long_retrieval.csv")
    assert [(r["run"], r["benchmark"]) for r in rows] == [
        (run, bench) for bench in ("dci_syn", "iiw_syn", "sv_syn") for run in runs]
    for row in rows:
        assert 0.0 <= float(row["i2t_r1"]) <= 100.0 and 0.0 <= float(row["t2i_r1"]) <= 100.0
        assert row["seed"] == "0" and row["commit"] and row["version"]
    assert {r["n_images"] for r in rows if r["benchmark"] == "dci_syn"} == {"20"}
    short = {(r["run"], r["benchmark"]): r for r in _rows(results / "table_short_tasks.csv")}
    assert set(short) == {(run, b) for run in runs for b in ("coco_syn", "coco_syn40", "imagenet_syn")}
    assert short[("short", "coco_syn")]["i2t_r5"] and not short[("short", "coco_syn")]["top1"]
    assert {r["n_images"] for (_, b), r in short.items() if b == "coco_syn"} == {"24"}
    stats = {r["dataset"]: r for r in _rows(results / "table_dataset_stats.csv")}
    assert stats["train (raw)"]["n_images"] == "256"
    assert float(stats["dci_syn"]["subcaptions_per_text"]) > float(stats["train (raw)"]["subcaptions_per_text"])
    assert sorted(p.name for p in (results / "shards" / "train").glob("[!.]*")) == [
        "sizes.json", "train-000000.tar", "train-000001.tar", "train-000002.tar"]

    # paper tables: one row per declared run, a mean and an interval per benchmark metric
    for name, spec in cfg.paper.tables.items():
        table = _rows(results / f"table_{name}.csv")
        assert [r["run"] for r in table] == list(spec.rows), name
        assert all(r["seeds"] == "0" and r["ci_kind"] == "test-set" for r in table), name
        assert (results / f"table_{name}.md").read_text().startswith(f"**{spec.caption}**")
    long_texts = _rows(results / "table_long_texts.csv")[0]
    assert float(long_texts["dci_syn/i2t_r1"]) == float(rows[[r["run"] for r in rows].index("short")]["i2t_r1"])
    assert float(long_texts["dci_syn/i2t_r1/ci95"]) >= 0
    for fig in cfg.paper.figures:
        for suffix in (".png", ".pdf", ".csv"):
            assert (results / "figures" / f"{fig}{suffix}").stat().st_size > 0, fig + suffix
    maps = _rows(results / "figures" / "fig1_similarity_maps.csv")
    assert [m["run"] for m in maps] == ["short", "lotlip"]
    assert all(0.0 <= float(m["mentioned_share"]) <= 1.0 for m in maps)
    claims = _rows(results / "claims.csv")
    assert [c["claim"] for c in claims] == list(cfg.paper.claims)
    assert {c["verdict"] for c in claims} <= VERDICTS
    assert "# Claims check" in (results / "claims.md").read_text()

    report = snakemake(tmp_path, "--report", str(results / "report.html"), "--configfile", *TEST_CFG)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "Claims check" in (results / "report.html").read_text(errors="replace") or (
        results / "report.html").stat().st_size > 10_000

    again = snakemake(tmp_path, "all", "-n", "--configfile", *TEST_CFG)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr

    changed = snakemake(tmp_path, "all", "-n", "--configfile", *TEST_CFG, "--config", "eval={'batch_size': 8}")
    jobs = planned_jobs(changed.stdout + changed.stderr)
    assert jobs.get("evaluate") == len(runs) and "train" not in jobs  # only what depends on eval settings

    one = snakemake(tmp_path, "all", "-n", "--configfile", *TEST_CFG,
                    "--config", "experiments={'lotlip_m1': {'merged_num': 3}}")
    assert planned_jobs(one.stdout + one.stderr) == {  # that run, the figure and tables that read it, their pages
        "train": 1, "evaluate": 1, "table": 2, "sweep_figure": 1, "claims": 1, "table_html": 2, "claims_html": 1,
        "landing": 1, "all": 1}


def test_misspelled_config_key_stops_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  stpes: 3\n")
    done = snakemake(tmp_path, "all", "-n", "--configfile", str(bad))
    assert done.returncode != 0
    assert done.stderr.strip() == "lotlip: config error: config: unknown key 'train.stpes'"


def test_a_json_config_file_with_nested_sections_plans(tmp_path):
    """Snakemake reads a JSON --configfile into OrderedDicts; the workflow's config loader takes them."""
    extra = tmp_path / "extra.json"
    extra.write_text('{"train": {"steps": 3}, "eval": {"batch_size": 8}}')
    done = snakemake(tmp_path, "all", "-n", "--configfile", *TEST_CFG, str(extra))
    assert done.returncode == 0, done.stderr[-2000:]
    assert planned_jobs(done.stdout + done.stderr)["train"] >= 1


def test_wrong_type_stops_with_one_line(tmp_path):
    done = snakemake(tmp_path, "all", "-n", "--configfile", str(REPO / "config" / "config.yaml"),
                     "--config", "train={'steps': 'lots'}")
    assert done.returncode != 0
    err = done.stderr.strip()
    assert err.startswith("lotlip: config error: config: key 'train.steps'") and "\n" not in err


def test_workflow_lints_clean():
    done = run_child([str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "--lint"],
                     capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
