"""``lotlip train``: train one declared run, in this process or through submitit (``--launch``, ``--executor``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lotlip.config import parse_json, run_config_from_dict
from lotlip.stages import train


def cmd_train(args: argparse.Namespace) -> None:
    run = run_config_from_dict(parse_json(args.run, "--run"))
    train.train_run(run, args.shards, args.out, train.launch_settings(args.launch, args.executor),
                    text_init=args.text_init)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``train``."""
    p = sub.add_parser("train", help="train one declared run")
    p.add_argument("--run", required=True, help="resolved run config as JSON")
    p.add_argument("--shards", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--launch", default="{}", help="where to run: config `launch` as JSON (default: this process)")
    p.add_argument("--executor", help="override launch.executor: inline, local, debug or slurm")
    p.add_argument("--text-init", type=Path, help="checkpoint whose text tower starts this run (experiment text_init)")
    p.set_defaults(func=cmd_train)
