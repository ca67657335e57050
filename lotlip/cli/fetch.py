"""``lotlip fetch | fetch-model | import-benchmark``: datasets, released weights and real benchmarks.

Each command takes explicit arguments (the rules pass the relevant config values), so Snakemake re-runs a job
exactly when those values change.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lotlip.stages import fetch


def cmd_fetch(args: argparse.Namespace) -> None:
    fetch.fetch_dataset(args.dataset, args.root, args.out, args.catalog)


def cmd_fetch_model(args: argparse.Namespace) -> None:
    fetch.fetch_model(args.url, args.out, args.sha256)


def cmd_import_benchmark(args: argparse.Namespace) -> None:
    fetch.import_real_benchmark(args.source, args.data_root, args.out, args.path, check_count=args.check_count)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``fetch``, ``fetch-model`` and ``import-benchmark``."""
    p = sub.add_parser("fetch", help="download + extract one dataset of config/datasets.yaml under the data root")
    p.add_argument("--dataset", required=True)
    p.add_argument("--root", required=True, type=Path, help="data root, e.g. resources/data")
    p.add_argument("--catalog", type=Path, default=None, help="dataset catalog (default: config/datasets.yaml)")
    p.add_argument("--out", required=True, type=Path, help="marker JSON written when the fetch is complete")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("fetch-model", help="download one released weights file")
    p.add_argument("--url", required=True)
    p.add_argument("--sha256", default=None, help="expected hex digest ('' or absent: not verified)")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_fetch_model)

    p = sub.add_parser("import-benchmark", help="write a fetched real evaluation set as a benchmark folder")
    p.add_argument("--source", required=True, help="dci, iiw, docci, sharegpt4v-1k, sharegpt4v-10k, urban1k, "
                   "mscoco-5k, flickr30k-1k, flickr30k-full or imagenet")
    p.add_argument("--data-root", required=True, type=Path)
    p.add_argument("--path", type=Path, default=None, help="ImageNet val folder (source imagenet only)")
    p.add_argument("--no-check-count", dest="check_count", action="store_false",
                   help="accept sizes other than the protocol's (tiny fixtures)")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_import_benchmark)
