"""Stage ``report``: results tables, dataset statistics, reference columns, the paper's tables, figures and claims
check, and the pages ``snakemake --report`` shows."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lotlip.config import ClaimConfig, ConfigError, LotlipConfig, PaperFigureConfig, PaperTableConfig

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def results_table(table: str, evals: Sequence[Path], out: Path) -> pd.DataFrame:
    """Build results table ``table`` (e.g. ``long_retrieval``) from evaluation JSONs; write CSV + Markdown."""
    from lotlip.report.tables import build_table, write_table

    df = build_table(table, list(evals))
    write_table(df, out)
    log.info("wrote %s (%d rows)", out, len(df))
    return df


def stats_table(cfg: LotlipConfig, world: Path, captions: Path, benchmarks: Sequence[Path], out: Path) -> pd.DataFrame:
    """The dataset statistics table (paper Table 1/6 analog), token counts with the trained model's tokenizer,
    each text's start and end tokens included (as Table 1 counts BERT tokens with [CLS] and [SEP])."""
    from lotlip.model import get_tokenizer
    from lotlip.report.stats import dataset_stats
    from lotlip.report.tables import write_table

    tokenizer = get_tokenizer(cfg.train.model)
    df = dataset_stats(world, captions, list(benchmarks), lambda text: tokenizer.count_tokens(text) + 2)
    write_table(df, out)
    log.info("wrote %s (%d rows)", out, len(df))
    return df


def reference_table(table: Path, values: Mapping, metrics: Sequence[str], out: Path,
                    source: str | None = None) -> pd.DataFrame:
    """A built results table with reference ``values`` (run -> benchmark -> one per metric) and differences beside
    our ``metrics``."""
    import pandas as pd

    from lotlip.report.reference import with_reference
    from lotlip.report.tables import write_table

    df = with_reference(pd.read_csv(table), values, metrics)
    write_table(df, out)
    log.info("wrote %s (%d rows; reference: %s)", out, len(df), source or "unnamed")
    return df


def paper_table(spec: PaperTableConfig, kinds: dict[str, str], evals: Sequence[Path], out: Path) -> pd.DataFrame:
    """One paper table (mean ± 95% interval over seeds); ``kinds``: column benchmark -> kind, in order."""
    from lotlip.report.evals import load_evals
    from lotlip.report.paper_tables import build_paper_table, write_paper_table

    df = build_paper_table(spec, load_evals(list(evals)), kinds)
    write_paper_table(df, spec, kinds, out)
    log.info("wrote %s (%d rows)", out, len(df))
    return df


def claims(specs: dict[str, ClaimConfig], evals: Sequence[Path], out: Path) -> pd.DataFrame:
    """Check the paper's claims against the evaluation results; one verdict per claim."""
    from lotlip.report.claims import check_claims, write_claims
    from lotlip.report.evals import load_evals

    df = check_claims(specs, load_evals(list(evals)))
    write_claims(df, out)
    log.info("claims: %s", dict(df.verdict.value_counts()))
    return df


def sweep_gflops(points: Mapping[str, Mapping[str, Any]]) -> dict[float, float]:
    """Text-encoder GFLOPs per sweep point ``x``, each measured on a fresh model at the point's token limit
    (``points``: run -> {x, model, corner_tokens, context})."""
    from lotlip.model import create_model
    from lotlip.model.flops import text_encoder_gflops

    gflops = {}
    for p in points.values():
        model = create_model(p["model"], num_corner_tokens=p["corner_tokens"], context_length=p["context"]).eval()
        gflops[p["x"]] = text_encoder_gflops(model, p["context"])
    return gflops


def sweep_figure(spec: PaperFigureConfig, points: Mapping[str, Mapping[str, Any]], evals: Sequence[Path],
                 out: Path) -> pd.DataFrame:
    """A sweep figure: one panel per benchmark kind over the swept value, plus text FLOPs when ``spec.flops``."""
    from lotlip.report.evals import load_evals
    from lotlip.report.figures import plot_sweep, save_figure, sweep_frame

    data = sweep_frame(load_evals(list(evals)), {run: p["x"] for run, p in points.items()})
    gflops = sweep_gflops(points) if spec.flops else None
    if gflops is not None:
        data = data.assign(text_gflops=data.x.map(gflops))
    save_figure(plot_sweep(spec, data, gflops), data, out)
    return data


def maps_summary(run: str, checkpoint: str | Path, entries: Sequence[Mapping[str, Any]]) -> dict:
    """One CSV row of a maps figure: the run's mean share of its maps in the mentioned and in the salient object."""
    import numpy as np

    return {"run": run, "checkpoint": checkpoint, "scenes": len(entries),
            "mentioned_share": round(float(np.mean([e["mentioned_share"] for e in entries])), 4),
            "salient_share": round(float(np.mean([e["salient_share"] for e in entries])), 4)}


def maps_figure(spec: PaperFigureConfig, checkpoints: Mapping[str, str | Path], benchmark: Path | None, out: Path,
                focus_scenes: int = 100, patch: int = 8, stride: int = 4) -> pd.DataFrame:
    """A similarity-maps figure of each checkpoint over the first scenes of a synthetic long ``benchmark``; the
    CSV holds :func:`maps_summary` over ``max(spec.n_scenes, focus_scenes)`` scenes."""
    if benchmark is None:
        raise ConfigError("figure --benchmark: required by a maps figure")
    import numpy as np
    import pandas as pd
    from PIL import Image

    from lotlip.model.checkpoint import load_model
    from lotlip.report.figures import plot_maps, save_figure
    from lotlip.report.maps import model_maps, scene_records

    scenes = scene_records(benchmark, max(spec.n_scenes, focus_scenes))
    maps, rows = {}, []
    for run, path in checkpoints.items():
        model, tokenizer, _ = load_model(path)
        model.eval()
        entries = model_maps(model, tokenizer, scenes, patch, stride)
        maps[run] = entries[: spec.n_scenes]
        rows.append(maps_summary(run, path, entries))
    images = [np.asarray(Image.open(p).convert("RGB")) for _, p in scenes[: spec.n_scenes]]
    data = pd.DataFrame(rows)
    save_figure(plot_maps(spec, maps, images), data, out)
    return data


def figure(spec: PaperFigureConfig, out: Path, evals: Sequence[Path] = (),
           points: Mapping[str, Mapping[str, Any]] | None = None, checkpoints: Mapping[str, str | Path] | None = None,
           benchmark: Path | None = None, focus_scenes: int = 100, patch: int = 8, stride: int = 4,
           threads: int = 2) -> pd.DataFrame:
    """Draw one paper figure (PNG + PDF + CSV at ``out``): a sweep (``points``) or similarity maps
    (``checkpoints``); returns the plotted numbers."""
    import torch

    torch.set_num_threads(threads)
    if spec.kind == "sweep":
        data = sweep_figure(spec, points or {}, evals, out)
    else:
        data = maps_figure(spec, checkpoints or {}, benchmark, out, focus_scenes, patch, stride)
    log.info("wrote %s", out)
    return data


def landing_page(out: Path, claims_csv: Path | None = None, table: Path | None = None, table_title: str | None = None,
                 figure_png: Path | None = None, figure_caption: str | None = None) -> None:
    """The report's landing page: claims verdicts, the headline table and the maps figure (each optional)."""
    from lotlip.report.landing import write_landing

    if figure_caption and figure_png is None:
        raise ValueError("landing --figure-caption: given without --figure")
    write_landing(out, claims_csv=claims_csv, table_md=table, table_title=table_title, figure_png=figure_png,
                  figure_caption=figure_caption)
    log.info("wrote %s (claims: %s, table: %s, figure: %s)", out, claims_csv, table, figure_png)


def table_page(markdown: Path, out: Path, title: str | None = None) -> None:
    """One table's Markdown as a standalone HTML page."""
    from lotlip.report.landing import write_table_page

    write_table_page(markdown, out, title)
    log.info("wrote %s", out)
