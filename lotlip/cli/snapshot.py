"""``lotlip snapshot``: a study's tables, figures and claims copied into ``results/studies/<tier>/`` with
``snapshot.json`` (config hash, commit, seeds, rebuild command)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lotlip.cli.parsing import config_arg
from lotlip.stages import snapshot


def cmd_snapshot(args: argparse.Namespace) -> None:
    snapshot.write_snapshot(config_arg(args.cfg), args.files, args.results, args.out)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``snapshot``."""
    p = sub.add_parser("snapshot", help="copy a study tier's tables, figures and claims into results/studies/<tier>/ "
                       "with snapshot.json")
    p.add_argument("--cfg", required=True, help="the tier's whole config as JSON (its sha256 is recorded)")
    p.add_argument("--results", required=True, type=Path, help="the tier's results folder (files keep their place "
                   "under it)")
    p.add_argument("--out", required=True, type=Path, help="the snapshot folder (replaced whole)")
    p.add_argument("files", nargs="+", type=Path, help="tables (.csv, .md), figures (.png, .csv), claims")
    p.set_defaults(func=cmd_snapshot)
