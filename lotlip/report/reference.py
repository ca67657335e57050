"""Published reference numbers beside ours: ``<metric>_ref`` and ``<metric>_diff`` (ours - reference) columns.

The values come from config (``reference.values``: run or model -> benchmark -> numbers in the order of
``reference.metrics``), e.g. the official LoTLIP README's R@1 table (FACTS.md, "Reference numbers").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

Values = Mapping[str, Mapping[str, Sequence[float]]]


def _check(values: Values, metrics: Sequence[str]) -> None:
    for run, benches in values.items():
        for bench, numbers in benches.items():
            if len(numbers) != len(metrics):
                raise ValueError(f"reference.values.{run}.{bench}: {len(numbers)} numbers for "
                                 f"{len(metrics)} metrics ({', '.join(metrics)})")


def with_reference(df: pd.DataFrame, values: Values, metrics: Sequence[str], decimals: int = 2) -> pd.DataFrame:
    """``df`` (rows: run x benchmark) with each metric followed by its reference and the difference.

    Rows without a reference value get empty cells; the reference itself is never written into our columns.
    """
    _check(values, metrics)
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"reference.metrics: table has no column {missing[0]!r} (columns: {', '.join(df.columns)})")
    out = df.copy()
    for i, metric in enumerate(metrics):
        ref = [values.get(run, {}).get(bench, [None] * len(metrics))[i]
               for run, bench in zip(out["run"], out["benchmark"], strict=True)]
        ref_col = pd.to_numeric(pd.Series(ref, index=out.index, dtype="object"))
        at = out.columns.get_loc(metric) + 1
        out.insert(at, f"{metric}_ref", ref_col)
        out.insert(at + 1, f"{metric}_diff", (pd.to_numeric(out[metric]) - ref_col).round(decimals))
    return out

