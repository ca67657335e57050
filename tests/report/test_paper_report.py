"""Paper tables, intervals, the claims check and figures, on evaluation results written by hand-picked numbers."""

import json
import math

import pandas as pd
import pytest

from lotlip import plan
from lotlip.cli import main as cli_main
from lotlip.config import ClaimConfig, PaperTableConfig, load_config
from lotlip.report.claims import check_claims, verdict
from lotlip.report.evals import kind_values, load_evals
from lotlip.report.intervals import Estimate, binomial_se, difference, estimate
from lotlip.report.paper_tables import build_paper_table, to_markdown
from tests.conftest import REPO


def _eval(tmp_path, run, seed, bench, kind, **metrics):
    path = tmp_path / run / f"seed{seed}" / f"{bench}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"run": run, "seed": seed, "benchmark": bench, "kind": kind, "n_images": 100, "commit": "abc",
            "lotlip_version": "0.1", **metrics}
    path.write_text(json.dumps(data))
    return path


def test_estimate_uses_t_over_seeds_and_binomial_for_one_seed():
    est = estimate([10.0, 12.0, 14.0], [1.0, 1.0, 1.0])
    assert est.ci_kind == "seeds" and est.mean == 12.0
    assert est.half_width == pytest.approx(4.303 * 2.0 / math.sqrt(3), rel=1e-3)  # t(0.975, 2) = 4.303
    one = estimate([50.0], [binomial_se(50.0, 100)])
    assert one.ci_kind == "test-set" and one.half_width == pytest.approx(9.617, rel=1e-3)  # Wilson: 40.4 .. 59.6
    assert estimate([3.0], []).ci_kind == "none"


def test_difference_is_paired_when_seeds_match():
    treat, ctrl = {0: 20.0, 1: 30.0, 2: 25.0}, {0: 10.0, 1: 20.0, 2: 15.0}
    eff = difference(treat, ctrl, {}, {})
    assert eff.mean == pytest.approx(10.0) and eff.half_width == pytest.approx(0.0)  # every seed gains exactly 10
    welch = difference(treat, {5: 10.0, 6: 20.0, 7: 15.0}, {}, {})
    assert welch.ci_kind == "seeds" and welch.half_width > 5
    single = difference({0: 60.0}, {0: 40.0}, {0: binomial_se(60, 100)}, {0: binomial_se(40, 100)})
    assert single.ci_kind == "test-set" and single.low > 0


@pytest.mark.parametrize("mean, half, direction, expected", [
    (5.0, 2.0, "increase", "reproduced"), (-5.0, 2.0, "increase", "not reproduced"),
    (1.0, 2.0, "increase", "inconclusive"), (-5.0, 2.0, "decrease", "reproduced"),
    (5.0, 2.0, "decrease", "not reproduced"), (5.0, float("nan"), "increase", "inconclusive")])
def test_verdict_follows_the_interval(mean, half, direction, expected):
    assert verdict(Estimate(mean, half, 3, "seeds"), direction) == expected


@pytest.mark.parametrize("n_seeds, mean, expected", [
    (1, 5.0, "supported (1 seed)"), (1, -5.0, "contradicted (1 seed)"), (1, 1.0, "inconclusive"),
    (2, 5.0, "supported (2 seeds)"), (2, -5.0, "contradicted (2 seeds)")])
def test_fewer_than_three_seeds_never_reproduce(n_seeds, mean, expected):
    kind = "test-set" if n_seeds == 1 else "seeds"
    assert verdict(Estimate(mean, 2.0, n_seeds, kind), "increase") == expected


@pytest.mark.parametrize(("percent", "n", "low", "high"), [(0.0, 40, 0.0, 8.76), (100.0, 40, 91.24, 100.0),
                                                          (50.0, 100, 40.38, 59.62)])
def test_wilson_interval_does_not_collapse_at_the_edges(percent, n, low, high):
    from lotlip.report.intervals import wilson_interval

    assert wilson_interval(percent, n) == pytest.approx((low, high), abs=0.01)
    assert binomial_se(percent, n) > 0
    one = difference({0: 100.0}, {0: 100.0}, {0: binomial_se(100.0, n)}, {0: binomial_se(100.0, n)})
    assert one.half_width > 0 and verdict(one, "increase") == "inconclusive"


def test_claims_are_computed_from_results(tmp_path):
    paths = []
    for seed, (lo, hi) in enumerate([(2.0, 40.0), (3.0, 42.0), (1.0, 38.0)]):
        paths += [_eval(tmp_path, "short", seed, "dci", "long", i2t_r1=lo, t2i_r1=lo),
                  _eval(tmp_path, "lotlip", seed, "dci", "long", i2t_r1=hi, t2i_r1=hi),
                  _eval(tmp_path, "short", seed, "coco", "short", i2t_r1=60.0 + seed, t2i_r1=60.0),
                  _eval(tmp_path, "lotlip", seed, "coco", "short", i2t_r1=59.0 + seed, t2i_r1=61.0)]
    claims = {"gain": ClaimConfig(text="long gain", treatment="lotlip", control="short", kind="long"),
              "short": ClaimConfig(text="short kept", treatment="lotlip", control="short", kind="short"),
              "zs": ClaimConfig(text="zero-shot", treatment="lotlip", control="short", kind="zeroshot")}
    df = check_claims(claims, load_evals(paths)).set_index("claim")
    assert df.loc["gain", "verdict"] == "reproduced" and df.loc["gain", "effect"] == pytest.approx(38.0)
    assert df.loc["gain", "ci_kind"] == "seeds" and df.loc["gain", "n_seeds"] == 3
    assert df.loc["short", "verdict"] == "inconclusive" and df.loc["short", "effect"] == pytest.approx(0.0)
    assert df.loc["zs", "verdict"] == "not measured"


def test_paper_table_rows_columns_and_markdown(tmp_path):
    paths = [_eval(tmp_path, "short", s, "dci", "long", i2t_r1=10.0 + s, t2i_r1=20.0) for s in (0, 1)]
    paths += [_eval(tmp_path, "lotlip", 0, "dci", "long", i2t_r1=50.0, t2i_r1=40.0),
              _eval(tmp_path, "lotlip", 0, "inet", "zeroshot", top1=30.0),
              _eval(tmp_path, "short", 0, "inet", "zeroshot", top1=35.0)]
    spec = PaperTableConfig(caption="T2", rows={"short": "short only", "lotlip": "LoTLIP"})
    kinds = {"dci": "long", "inet": "zeroshot"}
    df = build_paper_table(spec, load_evals(paths), kinds)
    assert list(df.run) == ["short", "lotlip"]
    short = df.set_index("run").loc["short"]
    assert short["dci/i2t_r1"] == 10.5 and short["dci/i2t_r1/ci95"] == pytest.approx(6.35, abs=0.01)
    assert short["seeds"] == "0 1" and short["ci_kind"] == "seeds/test-set"
    assert pd.isna(short.get("inet/top5"))  # only the metrics the spec names
    md = to_markdown(df, spec, kinds)
    assert "**T2**" in md and "| LoTLIP" in md and "50.0 ± " in md and "dci I2T R@1" in md
    with pytest.raises(ValueError, match="table row 'short': no top1 result on benchmark 'other'"):
        build_paper_table(spec, load_evals(paths), {"other": "zeroshot"})


def test_kind_values_average_benchmarks_and_metrics(tmp_path):
    paths = [_eval(tmp_path, "r", 0, "a", "long", i2t_r1=10.0, t2i_r1=20.0),
             _eval(tmp_path, "r", 0, "b", "long", i2t_r1=30.0, t2i_r1=40.0)]
    values, ses = kind_values(load_evals(paths), "r", "long")
    assert values == {0: 25.0} and 0 < ses[0] < 5


def test_plan_drops_rows_figures_and_claims_of_unbuilt_runs():
    cfg = load_config(REPO / "config" / "config.yaml", {"select": {"experiments": ["short", "lotlip"]}})
    assert plan.paper_table_rows(cfg, "long_texts") == {"short": "short captions only", "lotlip": "LoTLIP"}
    assert "fig2_subcaptions" not in plan.paper_figures(cfg) and "fig1_similarity_maps" in plan.paper_figures(cfg)
    assert plan.checked_claims(cfg) == ["lotlip_beats_short_long"]
    full = load_config(REPO / "config" / "config.yaml", {"seeds": [0, 1]})
    assert plan.eval_files(full, ["lotlip"], ["dci_syn"]) == ["results/eval/lotlip/seed0/dci_syn.json",
                                                               "results/eval/lotlip/seed1/dci_syn.json"]
    points = plan.sweep_points(full, "fig4_token_limit")
    assert {r: p["x"] for r, p in points.items()} == {"lotlip": 77, "lotlip_ctx128": 128}
    assert {r: p["x"] for r, p in plan.sweep_points(full, "fig2_subcaptions").items()} == {"lotlip_m1": 1,
                                                                                          "lotlip": 2}


def test_secondary_sets_are_table_rows_but_not_counted_by_claims_or_sweeps():
    cfg = load_config(REPO / "config" / "config.yaml")
    assert {"coco_syn", "coco_syn40"} <= set(plan.benchmarks(cfg))
    assert "coco_syn40" not in plan.primary_benchmarks(cfg) and "coco_syn" in plan.primary_benchmarks(cfg)
    assert plan.claim_benchmarks(cfg, "long_texts_hurt_short") == ["coco_syn"]
    assert plan.claim_benchmarks(cfg, "long_texts_hurt_zeroshot") == ["imagenet_syn"]
    demoted = load_config(REPO / "config" / "config.yaml", {"benchmarks": {"coco_syn": {"primary": False}}})
    assert plan.claim_benchmarks(demoted, "long_texts_hurt_short") == []


def test_sweep_figure_with_flops_is_written(tmp_path):
    paths = []
    for run, ctx_score in (("a", 10.0), ("b", 20.0)):
        paths += [_eval(tmp_path, run, 0, "dci", "long", i2t_r1=ctx_score, t2i_r1=ctx_score),
                  _eval(tmp_path, run, 0, "inet", "zeroshot", top1=ctx_score / 2)]
    spec = {"kind": "sweep", "caption": "token limit", "runs": ["a", "b"], "x": "context_length", "flops": True}
    points = {"a": {"x": 32, "model": "lotlip-tiny", "corner_tokens": 2, "context": 32},
              "b": {"x": 64, "model": "lotlip-tiny", "corner_tokens": 2, "context": 64}}
    out = tmp_path / "fig" / "f.png"
    assert cli_main(["figure", "--spec", json.dumps(spec), "--points", json.dumps(points), "--threads", "1",
                     "--out", str(out), *map(str, paths)]) == 0
    assert out.stat().st_size > 1000 and out.with_suffix(".pdf").is_file()
    data = pd.read_csv(out.with_suffix(".csv"))
    assert set(data.panel) == {"long-text retrieval R@1", "zero-shot top-1"}
    gflops = data.groupby("x").text_gflops.first()
    assert 0 < gflops[32] < gflops[64]  # measured, grows with the token limit


def test_cell_share_counts_the_drop_inside_an_objects_cell():
    import numpy as np

    from lotlip.report.maps import cell_share, mentioned_object
    from lotlip.world.scene import Scene, SceneObject

    obj = SceneObject(shape="circle", colour="red", size="small", cell=0)  # top-left third
    salient = SceneObject(shape="square", colour="blue", size="large", cell=8, salient=True)
    drop = np.zeros((7, 7))
    drop[0, 0], drop[6, 6], drop[3, 3] = 3.0, 1.0, -5.0  # negative drops do not count
    assert cell_share(drop, obj, 32, 8, 4) == pytest.approx(0.75)
    assert cell_share(drop, salient, 32, 8, 4) == pytest.approx(0.25)
    assert cell_share(np.zeros((7, 7)), obj, 32, 8, 4) == 0.0
    scene = Scene(key="s", background="grey", objects=[salient, obj])
    assert mentioned_object(scene) is obj


def test_maps_figure_from_checkpoints(tiny_cfg, tmp_path):
    import torch

    from lotlip.model import create_model
    from lotlip.model.checkpoint import save_model
    from lotlip.world.build import build_benchmark

    build_benchmark(tiny_cfg.benchmarks["dci_syn"], tiny_cfg.world, tmp_path / "bench")
    torch.manual_seed(0)
    for run in ("a", "b"):
        save_model(tmp_path / f"{run}.pt", create_model("lotlip-tiny"), "lotlip-tiny", True, {"seed": 0})
    spec = {"kind": "maps", "caption": "maps", "runs": ["a", "b"], "benchmark": "dci_syn", "n_scenes": 2}
    out = tmp_path / "maps.png"
    checkpoints = {r: str(tmp_path / f"{r}.pt") for r in ("a", "b")}
    assert cli_main(["figure", "--spec", json.dumps(spec), "--checkpoints", json.dumps(checkpoints),
                     "--benchmark", str(tmp_path / "bench"), "--focus-scenes", "5", "--threads", "1",
                     "--out", str(out)]) == 0
    focus = pd.read_csv(out.with_suffix(".csv"))
    assert list(focus.run) == ["a", "b"] and list(focus.scenes) == [5, 5]
    assert ((focus.mentioned_share >= 0) & (focus.mentioned_share <= 1)).all()
    assert out.stat().st_size > 1000 and out.with_suffix(".pdf").is_file()
