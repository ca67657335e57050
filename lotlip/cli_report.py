"""``lotlip landing | table-html``: the pages ``snakemake --report`` shows (lotlip.report.landing)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def cmd_landing(args: argparse.Namespace) -> None:
    from lotlip.report.landing import write_landing

    if args.figure_caption and args.figure is None:
        raise ValueError("landing --figure-caption: given without --figure")
    write_landing(args.out, claims_csv=args.claims, table_md=args.table, table_title=args.table_title,
                  figure_png=args.figure, figure_caption=args.figure_caption)
    logging.info("wrote %s (claims: %s, table: %s, figure: %s)", args.out, args.claims, args.table, args.figure)


def cmd_table_html(args: argparse.Namespace) -> None:
    from lotlip.report.landing import write_table_page

    write_table_page(args.markdown, args.out, args.title)
    logging.info("wrote %s", args.out)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the report-page subcommands on the main parser."""
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
