"""Intervals and tests (statsmodels first; scipy where statsmodels has none)."""

from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion; (nan, nan) when there is no observation."""
    if n <= 0:
        return float("nan"), float("nan")
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(lo), float(hi)


def is_nan(x: float) -> bool:
    return isinstance(x, float) and math.isnan(x)
