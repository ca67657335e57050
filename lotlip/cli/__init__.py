"""``lotlip <stage> ...``: the entry points the workflow rules call.

Each stage takes its slice of the validated config as JSON (``--cfg``), so Snakemake re-runs a stage exactly
when its own settings change. Errors (config and input errors, failed downloads, failed writes) become one line on
stderr and exit code 2. One module per stage (``lotlip.cli.<stage>``) parses its commands' arguments and calls
:mod:`lotlip.stages`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from lotlip.cli import evaluate, fetch, images, relabel, report, shards, snapshot, tools, train
from lotlip.config import ConfigError
from lotlip.data.download import DownloadError
from lotlip.data.extract import ArchiveError
from lotlip.io import describe_os_error
from lotlip.train.launcher import LaunchError

# in the order of `lotlip --help`
COMMAND_MODULES = (images, fetch, relabel, shards, train, evaluate, report, snapshot, tools)
USER_ERRORS = (ConfigError, FileNotFoundError, ValueError, LaunchError, DownloadError, ArchiveError)


def build_parser() -> argparse.ArgumentParser:
    """The ``lotlip`` parser with every stage's commands."""
    parser = argparse.ArgumentParser(prog="lotlip", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print one line and return 2, an interrupt returns 128 + the signal."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["snakemake"]:  # Snakemake's own command line (its options are not ours to parse)
        from lotlip.workflow import main as snakemake_main

        return snakemake_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except USER_ERRORS as exc:
        print(f"lotlip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a failed write (full disk, quota, read-only folder): `cannot write <file>: <cause>`
        message = describe_os_error(exc)
        if message is None:
            raise
        print(f"lotlip {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM to `lotlip train` (the job it submitted is cancelled)
        print(f"lotlip {args.command}: error: {exc or 'stopped by SIGINT'}", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    return 0
