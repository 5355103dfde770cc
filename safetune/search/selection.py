"""Which Pareto configuration gets which alias.

``champion``: the most relevant configuration whose harm rate lies within the confidence interval
of the safest one (statistically as safe as the best, and the most useful of those). A user can
instead give a harm budget: the most relevant configuration with harm rate <= budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from safetune.errors import SafetuneError


@dataclass(frozen=True)
class Point:
    key: str
    harm_rate: float
    harm_ci_high: float
    relevance: float


def safest(points: list[Point]) -> Point:
    return min(points, key=lambda p: (p.harm_rate, -p.relevance))


def most_relevant(points: list[Point]) -> Point:
    return max(points, key=lambda p: (p.relevance, -p.harm_rate))


def champion(points: list[Point], harm_budget: float | None = None) -> tuple[Point, str]:
    """Return the champion and a one-line description of the rule that chose it."""
    if not points:
        raise SafetuneError("no configuration to choose a champion from")
    if harm_budget is not None:
        feasible = [p for p in points if p.harm_rate <= harm_budget]
        if not feasible:
            best = safest(points)
            return best, f"no configuration with harm_rate <= {harm_budget}; fell back to the safest"
        return most_relevant(feasible), f"most relevant with harm_rate <= {harm_budget}"
    best = safest(points)
    bound = best.harm_ci_high
    within = [p for p in points if p.harm_rate <= bound]
    return most_relevant(within), f"most relevant with harm_rate <= {bound:.4f} (safest's Wilson upper bound)"
