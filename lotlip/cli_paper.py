"""``lotlip paper-table | figure | claims``: the paper's tables, figures and claims check from evaluation JSONs."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from lotlip.config import ClaimConfig, ConfigError, PaperFigureConfig, PaperTableConfig


def _spec(text: str, cls: type, what: str):
    try:
        return cls(**json.loads(text))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ConfigError(f"--spec: not a valid {what} definition ({exc})") from None


def cmd_paper_table(args: argparse.Namespace) -> None:
    from lotlip.report.evals import load_evals
    from lotlip.report.paper_tables import build_paper_table, write_paper_table

    spec = _spec(args.spec, PaperTableConfig, "paper table")
    kinds = json.loads(args.kinds)
    df = build_paper_table(spec, load_evals(args.evals), kinds)
    write_paper_table(df, spec, kinds, args.out)
    logging.info("wrote %s (%d rows)", args.out, len(df))


def cmd_claims(args: argparse.Namespace) -> None:
    from lotlip.report.claims import check_claims, write_claims
    from lotlip.report.evals import load_evals

    try:
        claims = {cid: ClaimConfig(**c) for cid, c in json.loads(args.spec).items()}
    except (json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise ConfigError(f"--spec: not a valid claims definition ({exc})") from None
    df = check_claims(claims, load_evals(args.evals))
    write_claims(df, args.out)
    logging.info("claims: %s", dict(df.verdict.value_counts()))


def cmd_figure(args: argparse.Namespace) -> None:
    import torch

    spec = _spec(args.spec, PaperFigureConfig, "figure")
    torch.set_num_threads(args.threads)
    if spec.kind == "sweep":
        _sweep(spec, json.loads(args.points), args)
    else:
        _maps(spec, json.loads(args.checkpoints), args)
    logging.info("wrote %s", args.out)


def _sweep(spec: PaperFigureConfig, points: dict, args: argparse.Namespace) -> None:
    from lotlip.model import create_model
    from lotlip.model.flops import text_encoder_gflops
    from lotlip.report.evals import load_evals
    from lotlip.report.figures import plot_sweep, save_figure, sweep_frame

    data = sweep_frame(load_evals(args.evals), {run: p["x"] for run, p in points.items()})
    gflops = None
    if spec.flops:
        gflops = {}
        for p in points.values():
            model = create_model(p["model"], num_corner_tokens=p["corner_tokens"], context_length=p["context"]).eval()
            gflops[p["x"]] = text_encoder_gflops(model, p["context"])
        data = data.assign(text_gflops=data.x.map(gflops))
    save_figure(plot_sweep(spec, data, gflops), data, args.out)


def _maps(spec: PaperFigureConfig, checkpoints: dict, args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd
    from PIL import Image

    from lotlip.model.checkpoint import load_model
    from lotlip.report.figures import plot_maps, save_figure
    from lotlip.report.maps import model_maps, scene_records

    if args.benchmark is None:
        raise ConfigError("figure --benchmark: required by a maps figure")
    scenes = scene_records(args.benchmark, max(spec.n_scenes, args.focus_scenes))
    maps, rows = {}, []
    for run, path in checkpoints.items():
        model, tokenizer, _ = load_model(path)
        model.eval()
        entries = model_maps(model, tokenizer, scenes, args.patch, args.stride)
        maps[run] = entries[: spec.n_scenes]
        rows.append({"run": run, "checkpoint": path, "scenes": len(entries),
                     "mentioned_share": round(float(np.mean([e["mentioned_share"] for e in entries])), 4),
                     "salient_share": round(float(np.mean([e["salient_share"] for e in entries])), 4)})
    images = [np.asarray(Image.open(p).convert("RGB")) for _, p in scenes[: spec.n_scenes]]
    save_figure(plot_maps(spec, maps, images), pd.DataFrame(rows), args.out)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the report subcommands on the main parser."""
    p = sub.add_parser("paper-table", help="build one paper table (mean ± 95%% interval over seeds)")
    p.add_argument("--spec", required=True, help="the table's config (paper.tables.<name>) as JSON")
    p.add_argument("--kinds", required=True, help="column benchmark -> kind, in order, as JSON")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("evals", nargs="+", type=Path)
    p.set_defaults(func=cmd_paper_table)

    p = sub.add_parser("claims", help="check the paper's claims against the evaluation results")
    p.add_argument("--spec", required=True, help="paper.claims as JSON")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("evals", nargs="+", type=Path)
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("figure", help="draw one paper figure (PNG + PDF + CSV)")
    p.add_argument("--spec", required=True, help="the figure's config (paper.figures.<name>) as JSON")
    p.add_argument("--points", default="{}", help="sweep: run -> {x, model, corner_tokens, context} as JSON")
    p.add_argument("--checkpoints", default="{}", help="maps: run -> checkpoint path as JSON")
    p.add_argument("--benchmark", type=Path, help="maps: the synthetic long benchmark folder")
    p.add_argument("--focus-scenes", type=int, default=100, help="maps: scenes averaged in the focus score")
    p.add_argument("--patch", type=int, default=8, help="maps: occluder side in pixels")
    p.add_argument("--stride", type=int, default=4, help="maps: occluder step in pixels")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True, type=Path, help="the PNG path (PDF and CSV are written beside it)")
    p.add_argument("evals", nargs="*", type=Path)
    p.set_defaults(func=cmd_figure)
