"""``lotlip shards``: webdataset shards + sizes.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from lotlip.cli.parsing import add_images_arg, config_arg
from lotlip.stages import shards


def cmd_shards(args: argparse.Namespace) -> None:
    shards.build_shards(config_arg(args.cfg).shards, args.images, args.captions, args.out)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``shards``."""
    p = sub.add_parser("shards", help="write webdataset shards + sizes.json")
    p.add_argument("--cfg", required=True)
    add_images_arg(p)
    p.add_argument("--captions", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_shards)
