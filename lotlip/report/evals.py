"""Evaluation JSONs as one frame, and the per-seed values the paper tables, figures and claims aggregate."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lotlip.report.intervals import binomial_se

METRICS = ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5", "top1", "top5")
KIND_METRICS = {"long": ("i2t_r1", "t2i_r1"), "short": ("i2t_r1", "t2i_r1"), "zeroshot": ("top1",)}


def load_evals(paths: list[str | Path]) -> pd.DataFrame:
    """One row per evaluation JSON: run, seed, benchmark, kind, metrics, query counts and provenance."""
    rows = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        missing = [f for f in ("run", "benchmark", "kind") if f not in data]
        if missing:
            raise ValueError(f"{path}: evaluation result lacks field {missing[0]!r}")
        rows.append({"run": data["run"], "seed": data.get("seed"), "benchmark": data["benchmark"],
                     "kind": data["kind"], **{m: data.get(m) for m in METRICS},
                     "n_images": data.get("n_images"), "n_texts": data.get("n_texts") or data.get("n_images"),
                     "commit": data.get("commit"), "version": data.get("lotlip_version")})
    return pd.DataFrame(rows)


def queries(row: pd.Series, metric: str) -> int:
    """How many queries a metric averages over (text-to-image on a multi-caption set: one per caption)."""
    return int(row["n_texts"] if metric.startswith("t2i") else row["n_images"])


def seed_values(evals: pd.DataFrame, run: str, bench: str, metric: str) -> tuple[dict[int, float], dict[int, float]]:
    """(seed -> metric, seed -> its test-set standard error) of one run on one benchmark."""
    rows = evals[(evals.run == run) & (evals.benchmark == bench)]
    values, ses = {}, {}
    for _, row in rows.iterrows():
        if pd.isna(row.get(metric)):
            continue
        seed = int(row["seed"]) if pd.notna(row["seed"]) else 0
        values[seed] = float(row[metric])
        ses[seed] = binomial_se(float(row[metric]), queries(row, metric))
    return values, ses


def kind_values(evals: pd.DataFrame, run: str, kind: str,
                benchmarks: list[str] | None = None) -> tuple[dict[int, float], dict[int, float]]:
    """Per seed: the mean over ``kind``'s benchmarks and metrics (e.g. long I2T and T2I R@1), with its SE.

    The SE treats the averaged metrics as independent (I2T and T2I on one set are correlated, so it is
    approximate); it is used only when there is a single seed.
    """
    rows = evals[(evals.run == run) & (evals.kind == kind)]
    if benchmarks is not None:
        rows = rows[rows.benchmark.isin(benchmarks)]
    per_seed: dict[int, list[tuple[float, float]]] = {}
    for _, row in rows.iterrows():
        seed = int(row["seed"]) if pd.notna(row["seed"]) else 0
        for metric in KIND_METRICS[kind]:
            if pd.notna(row.get(metric)):
                per_seed.setdefault(seed, []).append(
                    (float(row[metric]), binomial_se(float(row[metric]), queries(row, metric))))
    values = {s: sum(v for v, _ in items) / len(items) for s, items in per_seed.items()}
    ses = {s: sum(se ** 2 for _, se in items) ** 0.5 / len(items) for s, items in per_seed.items()}
    return values, ses
