"""``lotlip images | synthetic-benchmark``: the training images and the synthetic benchmarks.

``lotlip world`` is a deprecated alias of ``lotlip images`` (it warns once on stderr, then does the same).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lotlip.cli.parsing import config_arg
from lotlip.stages import images

DEPRECATED_ALIASES = {"world": "images"}


def cmd_images(args: argparse.Namespace) -> None:
    if args.command in DEPRECATED_ALIASES:
        print(f"lotlip {args.command}: deprecated, use `lotlip {DEPRECATED_ALIASES[args.command]}`", file=sys.stderr)
    images.build_images(config_arg(args.cfg), args.out)


def cmd_synthetic_benchmark(args: argparse.Namespace) -> None:
    images.build_synthetic_benchmark(config_arg(args.cfg), args.name, args.out)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``images`` (and its deprecated alias ``world``) and ``synthetic-benchmark``."""
    helps = {"images": "write the training images: the synthetic world rendered, or img2dataset's download "
                       "(world.source)",
             "world": "deprecated alias of `lotlip images`"}
    for name, help_text in helps.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--cfg", required=True)
        p.add_argument("--out", required=True, type=Path)
        p.set_defaults(func=cmd_images)

    p = sub.add_parser("synthetic-benchmark",
                       help="generate a synthetic evaluation benchmark (long, short or zero-shot)")
    p.add_argument("--cfg", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_synthetic_benchmark)
