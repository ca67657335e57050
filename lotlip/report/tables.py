"""Paper-shaped tables built from evaluation JSONs (one row per run x benchmark)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lotlip.io import atomic_path
from lotlip.report.registry import TABLES

PROVENANCE_COLUMNS = ["seed", "commit", "version"]


def build_table(name: str, eval_paths: list[str | Path]) -> pd.DataFrame:
    """Rows of ``results/table_<name>.csv`` from per-run evaluation JSONs of the table's kinds."""
    if name not in TABLES:
        raise ValueError(f"table {name!r}: unknown (available: {', '.join(TABLES)})")
    spec = TABLES[name]
    rows = []
    for path in eval_paths:
        data = json.loads(Path(path).read_text())
        if data.get("kind", "long") not in spec.kinds:
            continue
        try:
            row = {"run": data["run"], "benchmark": data["benchmark"]}
            row.update({m: data.get(m) for m in spec.metrics})
            row.update({"seed": data["seed"], "commit": data["commit"], "version": data["lotlip_version"]})
        except KeyError as exc:
            raise ValueError(f"{path}: evaluation result lacks field {exc.args[0]!r}") from None
        rows.append(row)
    columns = ["run", "benchmark", *spec.metrics, *PROVENANCE_COLUMNS]
    df = pd.DataFrame(rows, columns=columns).sort_values(["benchmark", "run"], kind="stable")
    return df.dropna(axis=1, how="all")


def write_table(df: pd.DataFrame, csv_path: str | Path) -> None:
    """Write the CSV and a Markdown rendering beside it (``.md``), atomically."""
    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(csv_path.with_suffix(".md")) as tmp:
        tmp.write_text(df.to_markdown(index=False) + "\n")
