"""``python -m bench --quick`` runs every figure end to end and writes the expected results (no timing asserts)."""

import json
import sys

import pytest

from tests.conftest import REPO, run_child

FIGURES = ["train", "corners", "context", "utilisation", "input", "eval", "pipeline"]


@pytest.mark.slow
def test_quick_bench_writes_every_section(tmp_path):
    proc = run_child([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], cwd=REPO,
                     capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["mode"] == "quick" and r["figures_run"] == FIGURES
    machine = r["machine"]
    assert {"cpu", "cpu_count", "versions", "git_commit", "load_average_start", "load_average_end"} <= machine.keys()
    assert {"torch", "open_clip_torch", "webdataset", "snakemake"} <= machine["versions"].keys()
    for fig in FIGURES:
        assert {"seconds", "load_average_before", "load_average_after"} <= r[fig]["_run"].keys(), fig

    train = r["train"]  # 1: both trainers ran on the same model and data
    assert train["params"]["lotlip"] == train["params"]["open_clip"]
    assert len(train["runs"]["lotlip"]) == len(train["runs"]["open_clip_train"]) == 1
    assert train["runs"]["open_clip_train"][0]["steps"] == train["steps"]
    assert train["ratio"] > 0 and train["lotlip_samples_per_s"] > 0 and train["open_clip_samples_per_s"] > 0
    assert train["caption_tokens"]["max"] < 77  # raw captions: lotlip trims, open_clip pads
    full = train["full_context"]  # 1b: both trainers again, on captions that fill the 77-token context
    assert len(full["runs"]["lotlip"]) == len(full["runs"]["open_clip_train"]) == 1
    assert full["caption_tokens"]["min"] >= 77 and full["caption_tokens"]["at_least_77_pct"] == 100
    assert full["ratio"] > 0 and full["order"] == ["lotlip", "open_clip_train"]

    corners = r["corners"]  # 2
    assert {"overhead_pct", "flop_overhead_pct", "corner_work_overhead_pct", "corners_0", "corners_2"} <= corners.keys()
    assert corners["corners_2"]["step_gflops"] >= corners["corners_0"]["step_gflops"] > 0

    ctx = r["context"]  # 3: step time and FLOPs per context; longer context, more FLOPs
    steps, enc = ctx["steps"]["rows"], ctx["text_encoder"]["rows"]
    assert [x["context"] for x in steps] == [x["context"] for x in enc] == r["plan"]["model"]["contexts"]
    assert steps[-1]["step_gflops"] > steps[0]["step_gflops"] and enc[-1]["gflops_per_text"] > enc[0]["gflops_per_text"]

    util = r["utilisation"]  # 4: a ratio of two measured rates, with its profile
    assert util["peak_gflops"] > 0 and util["achieved_gflops"] > 0 and util["utilisation_pct"] > 0
    assert util["profile"]["top_ops"] and sum(util["profile"]["split_pct"].values()) > 99
    assert {"default_ms", "fused_ms"} <= util["adamw_step"].keys()
    prec = util["precision"]  # 4b: fp32 and bf16 steps and peaks, interleaved in one run
    rounds = r["plan"]["util"]["rounds"]
    for name in ("fp32", "bf16"):
        row = prec[name]
        assert len(row["step_times_s"]) == len(row["peak_times_s"]) == rounds, name
        assert row["samples_per_s"] > 0 and row["achieved_gflops"] > 0 and row["utilisation_pct"] > 0, name
    assert prec["fp32"]["step_median_s"] == util["step_median_s"] and prec["fp32"]["peak_gflops"] == util["peak_gflops"]
    assert prec["step_speedup"] > 0 and prec["peak_speedup"] > 0 and util["bf16_profile"]["top_ops"]

    loader = r["input"]["loader"]  # 5: the short-caption loader is compared with the trainer
    assert loader["short"]["samples_per_s"] > 0 and loader["short"]["ratio"] > 0

    sims = r["eval"]["similarity"]  # 6
    assert r["eval"]["encode"][0]["texts_per_s"] > 0 and r["eval"]["encode"][0]["images_per_s"] > 0
    assert [s["mode"] for s in sims][0] == "dense" and sims[-1]["n"] == r["plan"]["eval"]["large_size"]
    assert len({tuple(s["r1"]) for s in sims if s["n"] == sims[0]["n"]}) == 1  # dense == blocked

    pipe = r["pipeline"]  # 7: every job logged by the shim, with its peak RSS
    assert pipe["jobs"] >= 1 and pipe["failed_jobs"] == 0 and pipe["replan_nothing_to_do"]
    assert all(s["peak_rss_mb"] > 0 for s in pipe["stages"])

    assert {g["figure"] for g in r["goals"]} == {"1", "1b", "2", "4", "4b", "5", "6", "7"}
    md = (tmp_path / "results.md").read_text()
    for heading in ("## Goals", "## Method", "## 1. Training throughput", "### 1. Raw captions",
                    "### 1b. Captions filling the 77-token context", "## 2. Corner-token overhead",
                    "## 3. Context-length cost", "## 4. Hardware utilisation", "### 4b. bf16 vs fp32",
                    "## 5. Input pipeline", "## 6. Evaluation", "## 7. Pipeline", "## Missed goals"):
        assert heading in md, heading
    assert f"**lotlip / open_clip_train = {full['ratio']}x at equal text length**" in md
    assert "bf16 what-if" not in md.lower() and "## 8." not in md  # no gpu_results.json in the folder
    assert machine["git_commit"].split("+")[0] in md


def test_only_merges_into_existing_results(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"mode": "quick", "kept": {"x": 1}}))
    proc = run_child([sys.executable, "-m", "bench", "--quick", "--only", "eval", "--out", str(tmp_path)],
                     cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["kept"] == {"x": 1} and r["figures_run"] == ["eval"] and r["eval"]["similarity"]
    assert [g["figure"] for g in r["goals"]] == ["6"]
