"""Tables built from evaluation JSONs (one row per run x benchmark)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lotlip.io import atomic_path

LONG_RETRIEVAL_COLUMNS = ["run", "benchmark", "i2t_r1", "t2i_r1", "n_images", "seed", "commit", "version"]


def long_retrieval_table(eval_paths: list[str | Path]) -> pd.DataFrame:
    """Rows of ``results/table_long_retrieval.csv`` from per-run evaluation JSONs."""
    rows = []
    for path in eval_paths:
        data = json.loads(Path(path).read_text())
        try:
            rows.append({"run": data["run"], "benchmark": data["benchmark"], "i2t_r1": data["i2t_r1"],
                         "t2i_r1": data["t2i_r1"], "n_images": data["n_images"], "seed": data["seed"],
                         "commit": data["commit"], "version": data["lotlip_version"]})
        except KeyError as exc:
            raise ValueError(f"{path}: evaluation result lacks field {exc.args[0]!r}") from None
    return pd.DataFrame(rows, columns=LONG_RETRIEVAL_COLUMNS).sort_values(["benchmark", "run"], kind="stable")


def write_table(df: pd.DataFrame, csv_path: str | Path) -> None:
    """Write the CSV and a Markdown rendering beside it (``.md``), atomically."""
    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(csv_path.with_suffix(".md")) as tmp:
        tmp.write_text(df.to_markdown(index=False) + "\n")
