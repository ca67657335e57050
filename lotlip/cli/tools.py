"""``lotlip pull | dvc-yaml | check-config | snakemake``: tools around the workflow (no stage of it)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def cmd_pull(args: argparse.Namespace) -> None:
    from lotlip.artifacts import pull

    result = pull(args.workdir, args.remote)
    for name in result["missing"]:
        print(f"lotlip pull: missing from the remote: {name} (snakemake will rebuild it)", file=sys.stderr)
    log.info("restored the timestamps of %d Snakemake outputs", result["restored"])


def cmd_dvc_yaml(args: argparse.Namespace) -> None:
    from lotlip.artifacts import dvc_yaml
    from lotlip.config import load_config
    from lotlip.io import write_text

    existing = args.out.read_text() if args.out.is_file() else ""  # other tiers' stages are kept
    write_text(args.out, dvc_yaml(load_config(*args.configfiles), [str(f) for f in args.configfiles], existing))


def cmd_check_config(args: argparse.Namespace) -> None:
    from lotlip.config import load_config
    from lotlip.plan import check_plan

    check_plan(load_config(*args.files))  # every whole-config check the workflow runs before planning
    print(json.dumps("ok"))


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``pull``, ``dvc-yaml``, ``check-config`` and (for ``--help``) ``snakemake``."""
    p = sub.add_parser("pull", help="dvc pull, then restore Snakemake's recorded output times")
    p.add_argument("--workdir", type=Path, default=Path("."))
    p.add_argument("--remote", default=None)
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("dvc-yaml", help="write (or update) dvc.yaml's stage naming the artifacts of a "
                       "tier's config files")
    p.add_argument("--out", type=Path, default=Path("dvc.yaml"))
    p.add_argument("configfiles", nargs="+", type=Path)
    p.set_defaults(func=cmd_dvc_yaml)

    p = sub.add_parser("check-config", help="validate config files (later files override earlier ones)")
    p.add_argument("files", nargs="+", type=Path)
    p.set_defaults(func=cmd_check_config)

    # listed for --help only: main() hands `lotlip snakemake ARGS` to lotlip.workflow before parsing
    sub.add_parser("snakemake", help="snakemake ARGS, but a missing or unreadable --configfile is one line "
                                     "(lotlip.workflow)", add_help=False)
