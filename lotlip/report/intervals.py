"""95% intervals of metrics and effects: over seeds when there are several, else over the test set.

With two or more seeds the interval is Student's t over the per-seed values (training and test noise). With one
seed only the evaluation's sampling noise can be estimated: a metric in percent over ``n`` queries gets the
standard error of its Wilson score interval (the wider side over z), which, unlike ``sqrt(p (1 - p) / n)``, does
not collapse to zero at 0% or 100%. Every interval says which kind it is (``ci_kind``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% half-width, the number of seeds and how the interval was made."""

    mean: float
    half_width: float
    n_seeds: int
    ci_kind: str  # "seeds" | "test-set" | "none"

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def format(self, digits: int = 1) -> str:
        if math.isnan(self.half_width):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


def wilson_interval(percent: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (in percent) of a rate given in percent over ``n`` trials."""
    p = min(max(percent / 100.0, 0.0), 1.0)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denom
    return 100.0 * (centre - half), 100.0 * (centre + half)


def binomial_se(percent: float, n: int) -> float:
    """Standard error (percentage points) of a rate in percent over ``n`` trials: the wider side of its Wilson
    interval over z (about ``sqrt(p (1 - p) / n)`` away from 0% and 100%, never zero)."""
    if n <= 0:
        return float("nan")
    low, high = wilson_interval(percent, n)
    return max(percent - low, high - percent) / Z95


def t_half_width(values: list[float]) -> float:
    """95% half-width of the mean of ``values`` (Student's t, n - 1 degrees of freedom)."""
    n = len(values)
    if n < 2:
        return float("nan")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def estimate(values: list[float], ses: list[float]) -> Estimate:
    """Mean over seeds of ``values``; ``ses``: each value's test-set standard error (used with one seed)."""
    if not values:
        raise ValueError("estimate: no values")
    mean = sum(values) / len(values)
    if len(values) >= 2:
        return Estimate(mean, t_half_width(values), len(values), "seeds")
    se = ses[0] if ses else float("nan")
    return Estimate(mean, Z95 * se if not math.isnan(se) else float("nan"), 1,
                    "test-set" if not math.isnan(se) else "none")


def difference(treatment: dict[int, float], control: dict[int, float],
               treatment_se: dict[int, float], control_se: dict[int, float]) -> Estimate:
    """Effect ``treatment - control`` from per-seed values (seed -> value).

    Same seeds on both sides (two or more): paired t over the per-seed differences. Different seed sets with two
    or more each: Welch's interval. Otherwise: the test-set standard errors of the two means combined.
    """
    t_vals, c_vals = list(treatment.values()), list(control.values())
    mean = sum(t_vals) / len(t_vals) - sum(c_vals) / len(c_vals)
    if set(treatment) == set(control) and len(treatment) >= 2:
        diffs = [treatment[s] - control[s] for s in sorted(treatment)]
        return Estimate(mean, t_half_width(diffs), len(diffs), "seeds")
    if len(t_vals) >= 2 and len(c_vals) >= 2:
        vt, vc = _var(t_vals) / len(t_vals), _var(c_vals) / len(c_vals)
        dof = (vt + vc) ** 2 / (vt ** 2 / (len(t_vals) - 1) + vc ** 2 / (len(c_vals) - 1)) if vt + vc > 0 else 1
        half = float(stats.t.ppf(0.975, dof)) * math.sqrt(vt + vc)
        return Estimate(mean, half, min(len(t_vals), len(c_vals)), "seeds")
    se_t = _mean_se(list(treatment_se.values()))
    se_c = _mean_se(list(control_se.values()))
    half = Z95 * math.sqrt(se_t ** 2 + se_c ** 2)
    return Estimate(mean, half, min(len(t_vals), len(c_vals)), "none" if math.isnan(half) else "test-set")


def _var(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _mean_se(ses: list[float]) -> float:
    """Standard error of a mean over seeds of independent estimates with these standard errors."""
    if not ses:
        return float("nan")
    return math.sqrt(sum(se ** 2 for se in ses)) / len(ses)
