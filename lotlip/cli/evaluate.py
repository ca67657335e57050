"""``lotlip evaluate | evaluate-model | benchmark``: a trained checkpoint on several benchmarks, a released model
on one benchmark, any CLIP-style model on named protocols."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lotlip.cli.parsing import config_arg
from lotlip.config import PRECISIONS, parse_json
from lotlip.stages import evaluate

if TYPE_CHECKING:
    from lotlip.model.sources import ModelSpec


def model_spec_arg(text: str, weights: Path) -> ModelSpec:
    """The ``--spec`` JSON object (kind, arch, context_length) with ``--weights`` as its path."""
    from lotlip.model.sources import ModelSpec

    data = parse_json(text, "--spec")
    if not isinstance(data, dict):
        raise ValueError("--spec: expected a JSON object with kind, arch, context_length")
    return ModelSpec.from_mapping({**data, "path": str(weights)}, where="--spec")


def cmd_evaluate(args: argparse.Namespace) -> None:
    evaluate.evaluate_checkpoint(config_arg(args.cfg), args.run, args.checkpoint, args.name, args.benchmark, args.out,
                                 recorded_eval=parse_json(args.cfg, "--cfg").get("eval", {}))


def cmd_evaluate_model(args: argparse.Namespace) -> None:
    evaluate.evaluate_release(model_spec_arg(args.spec, args.weights), args.model, args.name, args.benchmark,
                              args.out, batch_size=args.batch_size, device=args.device, threads=args.threads,
                              precision=args.precision)


def cmd_benchmark(args: argparse.Namespace) -> None:
    evaluate.run_protocols(args.model, args.protocol, args.out, args.benchmark_dir, data_root=args.data_root,
                           imagenet=args.imagenet, precision=args.precision, batch_size=args.batch_size,
                           device=args.device, threads=args.threads, name=args.name, check_count=args.check_count,
                           reference_config=args.reference_config)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``evaluate``, ``evaluate-model`` and ``benchmark``."""
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on one or more benchmarks (one JSON each)")
    p.add_argument("--cfg", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--name", required=True, nargs="+", help="benchmark names")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--benchmark", required=True, nargs="+", type=Path, help="benchmark folders, same order")
    p.add_argument("--out", required=True, nargs="+", type=Path, help="result JSONs, same order")
    p.set_defaults(func=cmd_evaluate)

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
