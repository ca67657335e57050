"""Paper-shaped tables built from evaluation JSONs (one row per run x benchmark)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lotlip.constants import TABLES
from lotlip.io import write_csv_md
from lotlip.report.evals import load_evals

PROVENANCE_COLUMNS = ["seed", "commit", "version"]


def build_table(name: str, eval_paths: list[str | Path]) -> pd.DataFrame:
    """Rows of ``results/table_<name>.csv`` from per-run evaluation JSONs of the table's kinds."""
    if name not in TABLES:
        raise ValueError(f"table {name!r}: unknown (available: {', '.join(TABLES)})")
    spec = TABLES[name]
    columns = ["run", "benchmark", *spec.metrics, *PROVENANCE_COLUMNS]
    evals = load_evals(eval_paths)
    rows = evals[evals["kind"].isin(spec.kinds)] if len(evals) else evals
    df = pd.DataFrame(rows, columns=columns).sort_values(["benchmark", "run"], kind="stable")
    return df.dropna(axis=1, how="all")


def write_table(df: pd.DataFrame, csv_path: str | Path) -> None:
    """Write the CSV and a Markdown rendering beside it (``.md``), atomically."""
    write_csv_md(df, csv_path)
