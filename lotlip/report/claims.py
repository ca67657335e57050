"""The claims check: each paper claim as a measured effect with its 95% interval and a computed verdict.

An effect is ``treatment - control`` of the mean over the claim's benchmark kind (long: I2T and T2I R@1 of every
long set; short: I2T and T2I R@1; zeroshot: top-1), in percentage points. Verdicts say what they rest on:

- with at least :data:`MIN_SEEDS` seeds (the interval covers training noise): *reproduced* when the whole interval
  lies on the claimed side of zero, *not reproduced* when it lies wholly on the other side;
- with fewer seeds (one seed's interval covers only the evaluation set's sampling noise): *supported (1 seed)* or
  *contradicted (1 seed)* (or "2 seeds") on the same rule — a direction, not a reproduction;
- otherwise *inconclusive*.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from lotlip.config import ClaimConfig
from lotlip.io import write_csv_md
from lotlip.report.evals import kind_values
from lotlip.report.intervals import Estimate, difference

KIND_LABEL = {"long": "long-text retrieval R@1 (mean I2T/T2I)", "short": "short retrieval R@1 (mean I2T/T2I)",
              "zeroshot": "zero-shot top-1"}


MIN_SEEDS = 3  # seeds needed before a claim may be called reproduced or not reproduced


def verdict(effect: Estimate, direction: str) -> str:
    """The interval's position relative to zero, worded by the evidence behind it (see the module)."""
    if math.isnan(effect.half_width):
        return "inconclusive"
    sign = 1.0 if direction == "increase" else -1.0
    low, high = sorted((sign * effect.low, sign * effect.high))
    if low <= 0 <= high:
        return "inconclusive"
    if effect.n_seeds >= MIN_SEEDS:
        return "reproduced" if low > 0 else "not reproduced"
    seeds = f"{effect.n_seeds} seed" + ("s" if effect.n_seeds != 1 else "")
    return f"supported ({seeds})" if low > 0 else f"contradicted ({seeds})"


def check_claims(claims: dict[str, ClaimConfig], evals: pd.DataFrame) -> pd.DataFrame:
    """One row per claim whose two runs were evaluated on its kind; others are listed as not measured."""
    rows = []
    for cid, claim in claims.items():
        base = {"claim": cid, "text": claim.text, "source": claim.source, "treatment": claim.treatment,
                "control": claim.control, "measure": KIND_LABEL[claim.kind], "expected": claim.direction}
        treat, treat_se = kind_values(evals, claim.treatment, claim.kind)
        ctrl, ctrl_se = kind_values(evals, claim.control, claim.kind)
        if not treat or not ctrl:
            rows.append({**base, "verdict": "not measured"})
            continue
        effect = difference(treat, ctrl, treat_se, ctrl_se)
        rows.append({**base, "treatment_mean": round(sum(treat.values()) / len(treat), 2),
                     "control_mean": round(sum(ctrl.values()) / len(ctrl), 2),
                     "effect": round(effect.mean, 2), "ci_low": round(effect.low, 2), "ci_high": round(effect.high, 2),
                     "n_seeds": effect.n_seeds, "ci_kind": effect.ci_kind,
                     "verdict": verdict(effect, claim.direction)})
    return pd.DataFrame(rows)


def verdict_summary(df: pd.DataFrame) -> str:
    """The count of each verdict, strongest evidence first: ``8 supported (1 seed), 7 inconclusive``."""
    counts = df.verdict.value_counts()
    order = ["reproduced", "not reproduced", *sorted(v for v in counts.index if v.startswith("supported")),
             *sorted(v for v in counts.index if v.startswith("contradicted")), "inconclusive", "not measured"]
    return ", ".join(f"{counts[v]} {v}" for v in order if v in counts)


def to_markdown(df: pd.DataFrame) -> str:
    """The claims table as Markdown, with the counts of each verdict first."""
    summary = verdict_summary(df)
    view = pd.DataFrame({
        "claim": df.claim, "paper says": df.text, "source": df.source,
        "comparison": df.treatment + " vs " + df.control, "measure": df.measure,
        "effect (95% CI)": [effect_text(r) for _, r in df.iterrows()], "seeds": df.get("n_seeds"),
        "verdict": df.verdict})
    return (f"# Claims check\n\n{summary}.\n\nEffect = treatment - control in percentage points; interval: "
            "`seeds` = t over seeds (paired when both runs share them), `test-set` = binomial (Wilson) error of one "
            "seed's evaluation (training noise not included). *Reproduced* / *not reproduced* need "
            f"{MIN_SEEDS} or more seeds; with fewer, *supported* / *contradicted* name the seeds the direction rests "
            "on. Computed by `lotlip claims`; never edited by hand.\n\n"
            + view.to_markdown(index=False) + "\n")


def effect_text(row: pd.Series) -> str:
    """A claim's effect with its interval, e.g. ``+8.3 [+6.5, +10.1] (test-set)``; ``—`` when not measured."""
    if pd.isna(row.get("effect")):
        return "—"
    return f"{row['effect']:+.1f} [{row['ci_low']:+.1f}, {row['ci_high']:+.1f}] ({row['ci_kind']})"


def write_claims(df: pd.DataFrame, csv_path: str | Path) -> None:
    """``claims.csv`` and ``claims.md`` beside it, atomically."""
    write_csv_md(df, csv_path, to_markdown(df))
