"""``lotlip report | stats | reference-table | paper-table | claims | figure | landing | table-html``: tables,
figures, the claims check and the report pages, from evaluation JSONs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lotlip.cli.parsing import add_images_arg, config_arg, dataclass_arg
from lotlip.config import ClaimConfig, ConfigError, PaperFigureConfig, PaperTableConfig, parse_json
from lotlip.stages import report


def cmd_report(args: argparse.Namespace) -> None:
    report.results_table(args.table, args.evals, args.out)


def cmd_stats(args: argparse.Namespace) -> None:
    report.stats_table(config_arg(args.cfg), args.images, args.captions, args.benchmarks, args.out)


def cmd_reference_table(args: argparse.Namespace) -> None:
    ref = parse_json(args.reference, "--reference")
    if not isinstance(ref, dict) or "metrics" not in ref or "values" not in ref:
        raise ValueError("--reference: expected a JSON object with 'metrics' and 'values'")
    report.reference_table(args.table, ref["values"], ref["metrics"], args.out, source=ref.get("source"))


def cmd_paper_table(args: argparse.Namespace) -> None:
    spec = dataclass_arg(args.spec, PaperTableConfig, "paper table")
    report.paper_table(spec, json.loads(args.kinds), args.evals, args.out)


def cmd_claims(args: argparse.Namespace) -> None:
    try:
        specs = {cid: ClaimConfig(**c) for cid, c in json.loads(args.spec).items()}
    except (json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise ConfigError(f"--spec: not a valid claims definition ({exc})") from None
    report.claims(specs, args.evals, args.out)


def cmd_figure(args: argparse.Namespace) -> None:
    spec = dataclass_arg(args.spec, PaperFigureConfig, "figure")
    report.figure(spec, args.out, args.evals, points=json.loads(args.points),
                  checkpoints=json.loads(args.checkpoints), benchmark=args.benchmark,
                  focus_scenes=args.focus_scenes, patch=args.patch, stride=args.stride, threads=args.threads)


def cmd_landing(args: argparse.Namespace) -> None:
    report.landing_page(args.out, claims_csv=args.claims, table=args.table, table_title=args.table_title,
                        figure_png=args.figure, figure_caption=args.figure_caption)


def cmd_table_html(args: argparse.Namespace) -> None:
    report.table_page(args.markdown, args.out, args.title)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the report commands."""
    p = sub.add_parser("report", help="build one results table from evaluation JSONs")
    p.add_argument("--table", required=True, help="table name, e.g. long_retrieval")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("evals", nargs="+", type=Path)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("stats", help="build results/table_dataset_stats.csv (Table 1/6 analog)")
    p.add_argument("--cfg", required=True)
    add_images_arg(p)
    p.add_argument("--captions", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("benchmarks", nargs="*", type=Path)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("reference-table", help="add reference numbers and differences to a results table")
    p.add_argument("--reference", required=True, help='JSON {"source", "metrics", "values"}')
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("table", type=Path, help="results/table_<name>.csv")
    p.set_defaults(func=cmd_reference_table)

    p = sub.add_parser("paper-table", help="build one paper table (mean ± 95%% interval over seeds)")
    p.add_argument("--spec", required=True, help="the table's config (paper.tables.<name>) as JSON")
    p.add_argument("--kinds", required=True, help="column benchmark -> kind, in order, as JSON")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("evals", nargs="+", type=Path)
    p.set_defaults(func=cmd_paper_table)

    p = sub.add_parser("claims", help="check the paper's claims against the evaluation results")
    p.add_argument("--spec", required=True, help="paper.claims as JSON")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("evals", nargs="+", type=Path)
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("figure", help="draw one paper figure (PNG + PDF + CSV)")
    p.add_argument("--spec", required=True, help="the figure's config (paper.figures.<name>) as JSON")
    p.add_argument("--points", default="{}", help="sweep: run -> {x, model, corner_tokens, context} as JSON")
    p.add_argument("--checkpoints", default="{}", help="maps: run -> checkpoint path as JSON")
    p.add_argument("--benchmark", type=Path, help="maps: the synthetic long benchmark folder")
    p.add_argument("--focus-scenes", type=int, default=100, help="maps: scenes averaged in the focus score")
    p.add_argument("--patch", type=int, default=8, help="maps: occluder side in pixels")
    p.add_argument("--stride", type=int, default=4, help="maps: occluder step in pixels")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True, type=Path, help="the PNG path (PDF and CSV are written beside it)")
    p.add_argument("evals", nargs="*", type=Path)
    p.set_defaults(func=cmd_figure)

    p = sub.add_parser("landing", help="the report's landing page: claims verdicts, headline table, maps figure")
    p.add_argument("--claims", type=Path, help="claims.csv (omitted: the tier checks no claims)")
    p.add_argument("--table", type=Path, help="the headline table's Markdown (omitted: the tier builds none)")
    p.add_argument("--table-title", help="its heading when the Markdown has no caption")
    p.add_argument("--figure", type=Path, help="the similarity-maps PNG (omitted: the tier draws none)")
    p.add_argument("--figure-caption", help="the figure's caption")
    p.add_argument("--out", required=True, type=Path, help="the HTML fragment workflow/report/workflow.rst includes")
    p.set_defaults(func=cmd_landing)

    p = sub.add_parser("table-html", help="one table's Markdown as a standalone HTML page (shown in the report)")
    p.add_argument("--title", help="the page title when the Markdown has no caption")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("markdown", type=Path)
    p.set_defaults(func=cmd_table_html)
