"""``lotlip snakemake ARGS``: ``snakemake ARGS``, except that a config file it cannot read is one line.

Snakemake reads the ``--configfile`` files in its command-line layer, before the workflow's own code runs, and a
file that is missing or not UTF-8 ends there in a Python traceback (Snakemake 9: ``FileNotFoundError`` escapes its
``load_configfile``); no Snakemake option, profile or Snakefile statement runs earlier, and a profile would add a
line of its own. So this runs Snakemake's command line in this process, exactly as the ``snakemake`` command does
(``snakemake.cli.parse_args``, then ``args_to_api``), with one check in between: every config file Snakemake is
about to read (``--configfile``, also when a profile sets it) must be a readable UTF-8 YAML (or JSON) mapping;
otherwise ``lotlip: config error: <file>: <why>`` on stderr and exit status 1, as for any other config error of
the workflow (``workflow/rules/common.smk``). Everything else is Snakemake's, options and exit status included.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import yaml


def check_config_file(path: str | Path) -> None:
    """Raise a one-line ``ConfigError`` naming ``path`` unless Snakemake can read it as a config mapping."""
    from lotlip.config import ConfigError, read_config_file

    read_config_file(path)  # not found, unreadable, not UTF-8, not YAML
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return  # OmegaConf read it (its loader accepts more); Snakemake's own error, if any, is its own
    if not isinstance(data, dict):
        got = "nothing (an empty file)" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{path}: a config file must map keys to values at the top level, got {got}")


def main(argv: Sequence[str] | None = None) -> int:
    """``snakemake.cli.main`` with :func:`check_config_file` on each config file between parsing and running."""
    from snakemake.cli import args_to_api, parse_args
    from snakemake.exceptions import print_exception

    from lotlip.config import ConfigError

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser, args = parse_args(argv)
    except Exception as exc:  # noqa: BLE001 - as snakemake.cli.main
        print_exception(exc)
        return 1
    try:
        for path in args.configfile or ():
            check_config_file(path)
    except ConfigError as exc:
        print(f"lotlip: config error: {exc}", file=sys.stderr)
        return 1
    try:
        return 0 if args_to_api(args, parser) else 1
    except Exception as exc:  # noqa: BLE001 - as snakemake.cli.main
        print_exception(exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
