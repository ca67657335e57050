"""``lotlip world | synthetic-benchmark``: the training images and the synthetic benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

from lotlip.cli.parsing import config_arg
from lotlip.stages import world


def cmd_world(args: argparse.Namespace) -> None:
    world.build_world(config_arg(args.cfg), args.out)


def cmd_synthetic_benchmark(args: argparse.Namespace) -> None:
    world.build_synthetic_benchmark(config_arg(args.cfg), args.name, args.out)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``world`` and ``synthetic-benchmark``."""
    p = sub.add_parser("world", help="generate the synthetic training split")
    p.add_argument("--cfg", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_world)

    p = sub.add_parser("synthetic-benchmark",
                       help="generate a synthetic evaluation benchmark (long, short or zero-shot)")
    p.add_argument("--cfg", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_synthetic_benchmark)
