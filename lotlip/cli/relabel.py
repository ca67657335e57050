"""``lotlip relabel``: long captions for every training image."""

from __future__ import annotations

import argparse
from pathlib import Path

from lotlip.cli.parsing import add_images_arg, config_arg
from lotlip.stages import relabel


def cmd_relabel(args: argparse.Namespace) -> None:
    relabel.relabel(config_arg(args.cfg).relabel, args.images, args.out)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``relabel``."""
    p = sub.add_parser("relabel", help="write long captions for every training image")
    p.add_argument("--cfg", required=True)
    add_images_arg(p)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_relabel)
