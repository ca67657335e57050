"""``lotlip`` entry points of the real-data tiers: fetch datasets and weights, import real benchmarks, evaluate
released models, add reference numbers to a table.

Registered into the main parser by :func:`add_parsers`. Each command takes explicit arguments (the rules pass
the relevant config values), so Snakemake re-runs a job exactly when those values change. Failures surface as
``ValueError`` / ``FileNotFoundError`` with one line naming the file or field, which ``lotlip.cli.main`` prints.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from lotlip.config import PRECISIONS
from lotlip.io import describe_os_error, write_json


@contextlib.contextmanager
def _as_user_errors() -> Iterator[None]:
    """Download, archive and environment failures become one-line ``ValueError``s (missing files stay as they
    are)."""
    from lotlip.data.download import DownloadError
    from lotlip.data.extract import ArchiveError

    try:
        yield
    except FileNotFoundError:
        raise
    except (DownloadError, ArchiveError) as exc:
        raise ValueError(str(exc)) from None
    except OSError as exc:  # a failed write reads `cannot write <file>: <cause>`
        raise ValueError(describe_os_error(exc) or str(exc)) from None


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock file: concurrent fetches share download and extraction folders (e.g. karpathy/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cmd_fetch(args: argparse.Namespace) -> None:
    """Download and extract one catalog dataset under the data root; write a marker naming its files."""
    from lotlip.data.download import CATALOG, fetch, load_catalog

    args.catalog = args.catalog or CATALOG
    catalog = load_catalog(args.catalog)
    if args.dataset not in catalog:
        raise ValueError(f"{args.catalog}: no dataset {args.dataset!r} (known: {', '.join(sorted(catalog))})")
    with _as_user_errors(), _lock(args.root / ".fetch.lock"):
        paths = fetch(args.dataset, args.root, catalog)
    manual = list(catalog[args.dataset].get("manual") or [])
    write_json(args.out, {"dataset": args.dataset, "paths": [str(p) for p in paths], "manual_steps": manual})
    logging.info("fetched %s: %d file(s); %d manual step(s) logged", args.dataset, len(paths), len(manual))


def cmd_fetch_model(args: argparse.Namespace) -> None:
    """Download one weights file (resumable, checksummed when a sha256 is given)."""
    from lotlip.data.download import download

    with _as_user_errors():
        download(args.url, args.out, args.sha256 or None)
    logging.info("downloaded %s to %s", args.url, args.out)


def cmd_import_benchmark(args: argparse.Namespace) -> None:
    """Write a real evaluation set as a benchmark folder (texts + image paths, no image copies)."""
    from lotlip.data.import_real import import_benchmark

    meta = import_benchmark(args.source, args.data_root, args.out, args.path, check_count=args.check_count)
    logging.info("imported %s: %s", args.source, meta)


def _spec(text: str, weights: Path):
    from lotlip.model.checkpoint import ModelSpec

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--spec: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("--spec: expected a JSON object with kind, arch, context_length")
    return ModelSpec.from_mapping({**data, "path": str(weights)}, where="--spec")


def cmd_evaluate_model(args: argparse.Namespace) -> None:
    """Evaluate a model as released (any kind of :func:`lotlip.model.checkpoint.load_for_eval`) on a benchmark."""
    import dataclasses

    import torch

    from lotlip.data.download import sha256_file
    from lotlip.eval.harness import check_precision, evaluate_loaded
    from lotlip.model.checkpoint import load_for_eval
    from lotlip.provenance import provenance

    torch.set_num_threads(args.threads)
    spec = _spec(args.spec, args.weights)
    check_precision(args.precision, args.device)
    with _as_user_errors():
        model, tokenizer = load_for_eval(spec, device=args.device)
    metrics = evaluate_loaded(model, tokenizer, args.benchmark, args.batch_size, args.precision, args.device)
    config = {"model": dataclasses.asdict(spec), "eval": {"batch_size": args.batch_size, "device": args.device,
                                                          "precision": args.precision}}
    result = {"run": args.model, "benchmark": args.name, **metrics, **provenance(config, None),
              "weights_sha256": sha256_file(args.weights)}
    write_json(args.out, result)
    logging.info("%s on %s: %s", args.model, args.name, metrics)


def cmd_benchmark(args: argparse.Namespace) -> None:
    """Evaluate any model on named protocols: CLIP_benchmark JSONs + a merged CSV in ``--out``."""
    import torch

    from lotlip.eval.harness import parse_benchmark_dirs, run_benchmark

    torch.set_num_threads(args.threads)
    if not args.protocol and not args.benchmark_dir:
        raise ValueError("--protocol or --benchmark-dir: name at least one set to evaluate on")
    with _as_user_errors():
        results = run_benchmark(args.model, args.protocol, args.out, args.data_root, args.imagenet, args.precision,
                                args.batch_size, args.device, args.name, args.check_count, args.reference_config,
                                parse_benchmark_dirs(args.benchmark_dir))
    logging.info("wrote %d result(s) and %s to %s", len(results), "results.csv", args.out)


def cmd_reference_table(args: argparse.Namespace) -> None:
    """A built results table with reference numbers and differences beside our metrics."""
    import pandas as pd

    from lotlip.report.reference import with_reference
    from lotlip.report.tables import write_table

    try:
        ref = json.loads(args.reference)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--reference: not valid JSON ({exc.msg})") from None
    if not isinstance(ref, dict) or "metrics" not in ref or "values" not in ref:
        raise ValueError("--reference: expected a JSON object with 'metrics' and 'values'")
    df = with_reference(pd.read_csv(args.table), ref["values"], ref["metrics"])
    write_table(df, args.out)
    logging.info("wrote %s (%d rows; reference: %s)", args.out, len(df), ref.get("source") or "unnamed")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the real-data commands on the ``lotlip`` sub-command parser."""
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

    p = sub.add_parser("evaluate-model", help="evaluate a released model (LoTLIP, CLIP, Long-CLIP) on a benchmark")
    p.add_argument("--model", required=True, help="model name (the table's run column)")
    p.add_argument("--spec", required=True, help='JSON {"kind", "arch", "context_length"}')
    p.add_argument("--weights", required=True, type=Path)
    p.add_argument("--name", required=True, help="benchmark name")
    p.add_argument("--benchmark", required=True, type=Path)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="encoding precision (autocast; amp needs CUDA)")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_evaluate_model)

    from lotlip.eval.model_spec import SPEC_HELP
    from lotlip.eval.protocols import describe

    p = sub.add_parser("benchmark", help="evaluate any CLIP-style model on named long/short-text protocols",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Evaluate one model on named protocols; writes <out>/<name>__<protocol>.json "
                       "(CLIP_benchmark's result format) and <out>/results.csv (every result JSON in <out>). "
                       "Protocols, model spec, files and weights are all checked before any encoding.",
                       epilog=f"protocols:\n{describe()}\n\nmodel spec (--model):\n{SPEC_HELP}")
    p.add_argument("--model", required=True, help="KIND[:ARCH]@WEIGHTS (see below)")
    p.add_argument("--protocol", default=None, help="comma-separated protocol names (see below)")
    p.add_argument("--benchmark-dir", action="append", metavar="NAME=DIR",
                   help="also evaluate on a ready benchmark folder (repeatable), e.g. a synthetic one: "
                   "dci_syn=resources/benchmarks/dci_syn")
    p.add_argument("--out", required=True, type=Path, help="result folder")
    p.add_argument("--name", default=None, help="model name in the file names (default: kind-arch-weights)")
    p.add_argument("--data-root", type=Path, default=Path("resources/data"), help="where lotlip fetch put the sets")
    p.add_argument("--imagenet", type=Path, default=None, help="ImageNet val folder (default <data-root>/imagenet/val)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="encoding precision: autocast bf16 or fp16 (amp, CUDA only); default fp32")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-check-count", dest="check_count", action="store_false",
                   help="accept sizes other than the protocol's (tiny fixtures, partial downloads)")
    p.add_argument("--reference-config", default=None, type=Path,
                   help="add <metric>_ref, <metric>_diff and ref_source to results.csv from this config's "
                   "reference block (e.g. config/release_eval.yaml: name the model clip_b32, clip_b16, longclip_b16, "
                   "lotlip_b32 or lotlip_b16 with --name)")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("reference-table", help="add reference numbers and differences to a results table")
    p.add_argument("--reference", required=True, help='JSON {"source", "metrics", "values"}')
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("table", type=Path, help="results/table_<name>.csv")
    p.set_defaults(func=cmd_reference_table)
