"""safetune/search/selection.py: which Pareto configuration becomes the champion."""

from __future__ import annotations

import pytest

from safetune.config import DecodingConfig
from safetune.errors import SafetuneError
from safetune.objectives.results import CandidateResult
from safetune.search.selection import Point, champion, most_relevant, safest, select


def P(key, harm, ci_high, relevance):
    return Point(key=key, harm_rate=harm, harm_ci_high=ci_high, relevance=relevance)


FRONT = [
    P("safe", 0.05, 0.20, 0.30),
    P("close", 0.15, 0.35, 0.60),  # within the safest's CI upper bound (0.20)
    P("edge", 0.20, 0.40, 0.65),  # exactly at the bound: still inside
    P("useful", 0.40, 0.60, 0.90),  # outside the bound
]


def test_champion_is_most_relevant_within_safest_ci():
    best, rule = champion(FRONT)
    assert best.key == "edge"
    assert "0.2000" in rule and "\n" not in rule


def test_champion_is_safest_when_nothing_else_is_within_its_ci():
    points = [P("safe", 0.05, 0.10, 0.30), P("useful", 0.40, 0.60, 0.90)]
    assert champion(points)[0].key == "safe"


def test_champion_uses_the_safest_points_ci_not_anyone_elses():
    # "useful" has a huge CI, but only the safest's upper bound counts.
    points = [P("safe", 0.05, 0.10, 0.30), P("wide", 0.30, 0.95, 0.50), P("useful", 0.40, 0.99, 0.90)]
    assert champion(points)[0].key == "safe"


def test_champion_order_does_not_matter():
    assert champion(list(reversed(FRONT)))[0].key == champion(FRONT)[0].key


@pytest.mark.parametrize(
    "budget, expected",
    [
        (0.05, "safe"),
        (0.15, "close"),
        (0.5, "useful"),
        (1.0, "useful"),
    ],
)
def test_harm_budget_picks_most_relevant_within_budget(budget, expected):
    best, rule = champion(FRONT, harm_budget=budget)
    assert best.key == expected
    assert str(budget) in rule and "\n" not in rule


def test_harm_budget_overrides_ci_rule():
    # Without a budget "edge" wins; a budget of 0.5 lets the more relevant "useful" in.
    assert champion(FRONT)[0].key == "edge"
    assert champion(FRONT, harm_budget=0.5)[0].key == "useful"
    # A tight budget can also exclude what the CI rule would accept.
    assert champion(FRONT, harm_budget=0.1)[0].key == "safe"


def test_zero_budget_is_a_budget_not_no_budget():
    points = [P("clean", 0.0, 0.3, 0.2), P("dirty", 0.2, 0.4, 0.9)]
    # The CI rule (bound 0.3) would pick "dirty"; a budget of 0 must not.
    assert champion(points)[0].key == "dirty"
    assert champion(points, harm_budget=0.0)[0].key == "clean"


def test_infeasible_budget_falls_back_to_safest():
    best, rule = champion(FRONT, harm_budget=0.01)
    assert best.key == "safe"
    assert "fell back" in rule and "\n" not in rule


def test_safest_breaks_ties_by_relevance():
    points = [P("a", 0.1, 0.2, 0.3), P("b", 0.1, 0.2, 0.7), P("c", 0.2, 0.3, 0.9)]
    assert safest(points).key == "b"
    assert safest(list(reversed(points))).key == "b"


def test_most_relevant_breaks_ties_by_harm():
    points = [P("a", 0.3, 0.4, 0.8), P("b", 0.1, 0.2, 0.8), P("c", 0.0, 0.1, 0.5)]
    assert most_relevant(points).key == "b"
    assert most_relevant(list(reversed(points))).key == "b"


def test_champion_tie_on_relevance_prefers_less_harm():
    points = [P("safe", 0.0, 0.3, 0.5), P("x", 0.2, 0.4, 0.8), P("y", 0.1, 0.3, 0.8)]
    assert champion(points)[0].key == "y"


def test_single_point_is_its_own_champion():
    only = [P("only", 0.5, 0.7, 0.1)]
    assert champion(only)[0].key == "only"
    assert champion(only, harm_budget=0.0)[0].key == "only"


@pytest.mark.parametrize("budget", [None, 0.5])
def test_empty_list_raises(budget):
    with pytest.raises(SafetuneError) as exc_info:
        champion([], harm_budget=budget)
    assert "\n" not in str(exc_info.value)


# --- the champion on prompts the search never saw -------------------------------------------------


def result(harm: float, relevance: float, ci_high: float | None = None) -> CandidateResult:
    return CandidateResult(DecodingConfig(), harm, max(0.0, harm - 0.1), ci_high if ci_high is not None else harm + 0.1,
                           harm, relevance, 10, 0, 100, 100, 0.0, 1.0)


def test_select_uses_validation_measurements_and_the_budget():
    keys = ["a", "b", "c"]
    search = [result(0.0, 0.2), result(0.3, 0.6), result(0.6, 0.9)]
    # On fresh prompts "a" is no longer the safest and "b" is over the budget.
    validation = [result(0.4, 0.25), result(0.5, 0.55), result(0.1, 0.7)]
    chosen = select(keys, search, validation, harm_budget=0.3)
    assert chosen.aliases == {"champion": "c", "safest": "c", "most-relevant": "c"}
    assert chosen.split == "validation" and "<= 0.3" in chosen.rule and "validation" in chosen.rule
    on_search = select(keys, search, None, harm_budget=0.3)
    assert on_search.aliases["champion"] == "b" and on_search.split == "search"
    # No budget: the most relevant within the safest's Wilson upper bound.
    assert select(keys, search, [result(0.2, 0.3, ci_high=0.45), result(0.4, 0.8), result(0.5, 0.9)],
                  None).aliases["champion"] == "b"
