"""The report's pages (lotlip.report.landing): the landing fragment, the table pages, and what each tier plans.

The pages in a real browser: tests/report/test_report_browser.py.
"""

from __future__ import annotations

import base64
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from lotlip.cli import main
from lotlip.report.landing import SECTIONS, landing_html, table_page, table_title, verdict_class
from tests.conftest import REPO, env_with_bin, planned_jobs, run_child, snakemake_cmd

CAPTION = "Table 2 analog: <short> & long"
TABLE_MD = (f"**{CAPTION}**\n\n|    | dci I2T R@1 |\n|:---|:---|\n| short | 1.0 ± 2.0 |\n| LoTLIP | 3.0 ± 1.0 |\n\n"
            "Mean ± 95%.\n")


def _claims(path: Path) -> Path:
    base = {"source": "Table 2", "treatment": "lotlip", "control": "short", "measure": "long-text retrieval",
            "expected": "increase", "effect": 2.0, "ci_low": 1.0, "ci_high": 3.0, "n_seeds": 1, "ci_kind": "test-set"}
    pd.DataFrame([{**base, "claim": "a", "text": "LoTLIP helps", "verdict": "supported (1 seed)"},
                  {**base, "claim": "b", "text": "Corners <help>", "verdict": "inconclusive"},
                  {**base, "claim": "c", "text": "It hurts", "verdict": "not measured", "effect": None}]).to_csv(
        path, index=False)
    return path


def _inputs(tmp_path: Path) -> dict:
    (tmp_path / "table.md").write_text(TABLE_MD)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "fig.png")
    return {"claims_csv": _claims(tmp_path / "claims.csv"), "table_md": tmp_path / "table.md",
            "figure_png": tmp_path / "fig.png", "figure_caption": "Fig. 1 analog: maps"}


def test_landing_shows_verdicts_table_and_figure_in_order(tmp_path):
    inputs = _inputs(tmp_path)
    page = landing_html(**inputs)
    assert [page.index(f'id="{s}"') for s in SECTIONS] == sorted(page.index(f'id="{s}"') for s in SECTIONS)
    assert "3 claims checked: 1 supported (1 seed), 1 inconclusive, 1 not measured." in page
    assert re.findall(r'<span class="verdict (\w+)">([^<]+)</span>', page) == [
        ("for", "supported (1 seed)"), ("open", "inconclusive"), ("open", "not measured")]
    assert "Corners &lt;help&gt;" in page and "+2.0 [+1.0, +3.0] (test-set)" in page and "—" in page
    assert f"<h2>{CAPTION.replace('<', '&lt;').replace('>', '&gt;').replace(' & ', ' &amp; ')}</h2>" in page
    assert page.count("<strong>Table 2") == 0  # the caption is the heading, not repeated above the table
    assert re.search(r"<td[^>]*>LoTLIP</td>\s*<td[^>]*>3.0 ± 1.0</td>", page)
    src = re.search(r'<img src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(src) == inputs["figure_png"].read_bytes()


def test_landing_of_a_tier_without_claims_table_or_figure_says_why(tmp_path):
    page = landing_html()
    assert all(f'id="{s}"' in page for s in SECTIONS) and "<img" not in page
    assert "This tier checks no claims" in page and "builds no table" in page and "draws no similarity-map" in page


def test_table_pages_have_one_heading_and_the_table(tmp_path):
    (tmp_path / "paper.md").write_text(TABLE_MD)
    (tmp_path / "plain.md").write_text("| run | i2t_r1 |\n|:--|--:|\n| short | 1.5 |\n")
    (tmp_path / "claims.md").write_text("# Claims check\n\n1 inconclusive.\n\n| claim |\n|:--|\n| a |\n")
    paper = table_page(tmp_path / "paper.md", "ignored")
    assert "<title>Table 2 analog: &lt;short&gt; &amp; long</title>" in paper and "<h1>" not in paper
    assert paper.count("<tr>") == 3 and '<meta charset="utf-8">' in paper
    plain = table_page(tmp_path / "plain.md", table_title("long_retrieval"))
    assert "<h1>Long-text retrieval: I2T / T2I R@1" in plain and re.search(r"<td[^>]*>short</td>", plain)
    assert table_page(tmp_path / "claims.md", "Claims check").count("Claims check</h1>") == 1


def test_titles_and_verdict_colours():
    assert table_title("long_retrieval_vs_reference").endswith(", beside the published reference numbers")
    assert table_title("new_table") == "New table"
    assert [verdict_class(v) for v in ("reproduced", "supported (2 seeds)", "not reproduced",
                                       "contradicted (1 seed)", "inconclusive", "?")] == [
        "for", "for", "against", "against", "open", "open"]


def test_cli_writes_the_landing_and_a_table_page(tmp_path, capsys):
    inputs = _inputs(tmp_path)
    assert main(["landing", "--claims", str(inputs["claims_csv"]), "--table", str(inputs["table_md"]),
                 "--figure", str(inputs["figure_png"]), "--out", str(tmp_path / "landing.html")]) in (0, None)
    assert (tmp_path / "landing.html").read_text() == landing_html(
        inputs["claims_csv"], inputs["table_md"], figure_png=inputs["figure_png"])
    assert main(["table-html", "--out", str(tmp_path / "t.html"), str(inputs["table_md"])]) in (0, None)
    assert "<table>" in (tmp_path / "t.html").read_text()
    assert main(["landing", "--figure-caption", "x", "--out", str(tmp_path / "x.html")]) == 2
    assert "--figure-caption: given without --figure" in capsys.readouterr().err


def _plan(workdir: Path, *configs: str) -> str:
    env = env_with_bin(HF_HUB_OFFLINE="1")
    cmd = [*snakemake_cmd(workdir), "-n", "-p",
           "all", "--configfile", str(REPO / "config" / "config.yaml"), *configs]
    done = run_child(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def _landing_argv(plan: str) -> list[str]:
    command = re.search(r"^Shell command: (lotlip landing .*?)(?=\n\n|\Z)", plan, flags=re.S | re.M).group(1)
    return shlex.split(command.split(" > ")[0])


@pytest.mark.parametrize(("tier", "claims", "table", "figure"), [
    ({"select": {"experiments": ["short"], "benchmarks": ["dci_syn"]}},  # one run: no claim compares two
     False, "results/table_long_texts.md", "results/figures/fig1_similarity_maps.png"),
    (str(REPO / "config" / "release_eval.yaml"), True, "results/release_eval/table_models_long.md", None),
])
def test_each_tier_plans_the_landing_sections_it_has(tier, claims, table, figure, tmp_path):
    if isinstance(tier, dict):
        import yaml

        (tmp_path / "tier.yaml").write_text(yaml.safe_dump(tier))
        tier = str(tmp_path / "tier.yaml")
    plan = _plan(tmp_path / "work", tier)
    argv = _landing_argv(plan)
    assert ("--claims" in argv) == claims and ("claims_html" in planned_jobs(plan)) == claims
    assert argv[argv.index("--table") + 1] == table
    assert (argv[argv.index("--figure") + 1] if "--figure" in argv else None) == figure
    assert planned_jobs(plan)["landing"] == 1 and planned_jobs(plan)["table_html"] >= 1
