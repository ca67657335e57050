"""Paper-shaped tables (Tables 2, 3, 4, 5, 7, 9): one row per run, mean ± 95% interval per benchmark metric."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lotlip.config import PaperTableConfig
from lotlip.io import write_csv_md
from lotlip.report.evals import seed_values
from lotlip.report.intervals import estimate

METRIC_NAMES = {"i2t_r1": "I2T R@1", "t2i_r1": "T2I R@1", "i2t_r5": "I2T R@5", "t2i_r5": "T2I R@5",
                "top1": "top-1", "top5": "top-5"}


def columns(spec: PaperTableConfig, kinds: dict[str, str]) -> list[tuple[str, str]]:
    """(benchmark, metric) column pairs, benchmarks in order (``kinds``: benchmark -> kind)."""
    return [(b, m) for b, kind in kinds.items() for m in spec.metrics.get(kind, [])]


def build_paper_table(spec: PaperTableConfig, evals: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Rows of a paper table; ``kinds`` maps each column benchmark (in order) to its kind.

    Columns: run, label, seeds, then ``<bench>/<metric>`` (mean over seeds) and ``<bench>/<metric>/ci95``
    (half-width), ``ci_kind`` (``seeds``: t over seeds; ``test-set``: binomial, one seed) and provenance.
    """
    rows = []
    for run, label in spec.rows.items():
        row: dict = {"run": run, "label": label}
        seeds: set[int] = set()
        ci_kinds: set[str] = set()
        for bench, metric in columns(spec, kinds):
            values, ses = seed_values(evals, run, bench, metric)
            if not values:
                raise ValueError(f"table row {run!r}: no {metric} result on benchmark {bench!r}")
            est = estimate([values[s] for s in sorted(values)], [ses[s] for s in sorted(values)])
            row[f"{bench}/{metric}"] = round(est.mean, 2)
            row[f"{bench}/{metric}/ci95"] = round(est.half_width, 2)
            seeds |= set(values)
            ci_kinds.add(est.ci_kind)
        mine = evals[evals.run == run]
        row.update({"seeds": " ".join(map(str, sorted(seeds))), "ci_kind": "/".join(sorted(ci_kinds)),
                    "commit": ",".join(sorted(set(mine.commit.dropna()))),
                    "version": ",".join(sorted(set(mine.version.dropna())))})
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame, spec: PaperTableConfig, kinds: dict[str, str]) -> str:
    """The table as the paper shows it: one column per benchmark metric, cells ``mean ± half-width``."""
    out = pd.DataFrame({"": df["label"]})
    for bench, metric in columns(spec, kinds):
        mean, half = df[f"{bench}/{metric}"], df[f"{bench}/{metric}/ci95"]
        out[f"{bench} {METRIC_NAMES.get(metric, metric)}"] = [
            f"{m:.1f}" if pd.isna(h) else f"{m:.1f} ± {h:.1f}" for m, h in zip(mean, half, strict=True)]
    out["seeds"] = df["seeds"]
    note = (f"\n\nMean over seeds ± 95% interval; interval kind: {', '.join(sorted(set(df.ci_kind)))} (`seeds`: "
            "Student's t over seeds; `test-set`: binomial error of one seed's evaluation, training noise not "
            "included).\n")
    return (f"**{spec.caption}**\n\n" if spec.caption else "") + out.to_markdown(index=False) + note


def write_paper_table(df: pd.DataFrame, spec: PaperTableConfig, kinds: dict[str, str], csv_path: str | Path) -> None:
    """Write the CSV and its Markdown rendering (``.md``) atomically."""
    write_csv_md(df, csv_path, to_markdown(df, spec, kinds))
