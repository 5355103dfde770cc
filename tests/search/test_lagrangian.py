"""safetune/search/lagrangian.py: dual ascent on lambda and the Lagrangian GA, on an analytic problem.

Toy problem on [0, 1]^n (``toys.budget_toy``): harm = x0, utility = 1 - (x0 - 1)^2 - sum(x[1:]^2)
(relevance stand-in). Utility rises with harm on [0, 1], so under harm <= b the optimum is
x = (b, 0, ...) with utility 1 - (1 - b)^2, and the Lagrangian -utility + lambda * (harm - b) is
stationary there for lambda* = 2 * (1 - b) (d/dx0: 2 (x0 - 1) + lambda = 0). For b = 0.2:
utility* = 0.36, lambda* = 1.6. The contract every algorithm shares is in tests/conformance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from safetune.errors import SafetuneError
from safetune.search.base import Problem
from safetune.search.lagrangian import DualAscent, LagrangianSearch, best_within_budget, harm_signal, lagrangian_fitness
from safetune.search.nsga2 import NSGA2
from safetune.search.registry import get_algorithm
from safetune.testing.toys import budget_toy as toy

REF = (1.0, 0.0)
BUDGET = 0.2
UTILITY_OPT = 1 - (1 - BUDGET) ** 2  # 0.36
LAMBDA_OPT = 2 * (1 - BUDGET)  # 1.6


def run(objective=toy, n_var=2, pop_size=20, n_gen=30, seed=0, n_constr=0, **settings):
    problem = Problem(objective, [0.0] * n_var, [1.0] * n_var, n_obj=2, n_constr=n_constr, ref_point=REF)
    return LagrangianSearch(**settings).run(problem, pop_size, n_gen, seed)


def lambdas(result) -> list[float]:
    return [log.extra["lambda"] for log in result.history]


# --- the pieces, on hand-computed values -------------------------------------------------------


def test_dual_step_is_log_space_and_clamped():
    dual = DualAscent(budget=0.2, lr=1.0, lambda_init=1.0, lambda_min=0.5, lambda_max=2.0)
    assert dual.step(1.0, 0.7) == pytest.approx(math.exp(0.5))  # over budget: up by e^(lr * 0.5)
    assert dual.step(1.0, 0.0) == pytest.approx(math.exp(-0.2))  # under budget: down
    assert dual.step(1.3, 0.2) == pytest.approx(1.3)  # on budget: unchanged
    assert dual.step(1.9, 1.0) == 2.0 and dual.step(0.6, 0.0) == 0.5  # 0.6 * e^-0.2 = 0.49 -> floor
    assert dual.step(0.7, 0.0) == pytest.approx(0.7 * math.exp(-0.2))
    assert DualAscent(budget=0.2, lr=1.0, lambda_min=0.5).step(0.5, 0.0) == 0.5
    assert dual.step(1.3, float("nan")) == 1.3  # every verdict unknown: no information, no step
    assert DualAscent(lr=2.0).step(1.0, 0.45) == pytest.approx(math.exp(2.0 * 0.25))


def test_fitness_is_negative_utility_plus_weighted_excess_harm():
    F = np.array([[0.5, -0.3], [0.1, -0.9], [np.nan, -0.5]])
    # 0.5: -0.3 + 2 * 0.3 = 0.3; 0.1: -0.9 + 2 * (-0.1) = -1.1;
    # unknown harm -> the reference point's harm 1.0: -0.5 + 2 * 0.8 = 1.1
    assert lagrangian_fitness(F, 2.0, 0.2, REF).ravel() == pytest.approx([0.3, -1.1, 1.1])


def test_harm_signal_mean_and_best():
    F = np.array([[0.6, -0.1], [0.2, -0.5], [np.nan, 0.0]])
    fitness = np.array([[0.5], [-0.7], [0.9]])
    cv = np.zeros((3, 1))
    assert harm_signal(F, fitness, cv, "mean") == pytest.approx(0.4)  # NaN harm left out
    assert harm_signal(F, fitness, cv, "best") == pytest.approx(0.2)
    # An infeasible row never counts as the best, whatever its fitness.
    assert harm_signal(F, fitness, np.array([[0.0], [1.0], [0.0]]), "best") == pytest.approx(0.6)
    assert math.isnan(harm_signal(np.full((2, 2), np.nan), fitness[:2], cv[:2], "mean"))


# --- the search on the toy problem ---------------------------------------------------------------


@pytest.mark.parametrize("signal", ["mean", "best"])
def test_lambda_moves_with_the_sign_of_harm_minus_budget(signal):
    result = run(signal=signal, n_gen=15, harm_budget=BUDGET)
    moved = 0
    for log in result.history:
        lam, nxt, h = log.extra["lambda"], log.extra["lambda_next"], log.extra["harm_signal"]
        assert nxt == pytest.approx(lam * math.exp(1.0 * (h - BUDGET)))  # default lr = 1, no clamp hit
        if abs(h - BUDGET) > 1e-9:
            assert (nxt > lam) == (h > BUDGET)
            moved += 1
    assert moved >= 5
    # The next generation is ranked with the updated multiplier.
    assert lambdas(result)[1:] == [log.extra["lambda_next"] for log in result.history[:-1]]


def test_lambda_rises_to_its_cap_when_harm_is_always_over_budget():
    always_harmful = lambda X, g: np.column_stack([0.5 + 0.5 * X[:, 0], -X[:, 1]])  # noqa: E731
    lam = lambdas(run(always_harmful, harm_budget=0.2, lambda_max=20.0, lr=2.0, n_gen=12))
    assert all(b > a for a, b in zip(lam, lam[1:]) if a < 20.0)
    assert lam[-1] == 20.0


def test_lambda_falls_to_its_floor_when_harm_is_always_under_budget():
    always_safe = lambda X, g: np.column_stack([0.5 * X[:, 0], -X[:, 1]])  # noqa: E731
    lam = lambdas(run(always_safe, harm_budget=0.9, lambda_min=0.05, lr=2.0, n_gen=12))
    assert all(b < a for a, b in zip(lam, lam[1:]) if a > 0.05)
    assert lam[-1] == 0.05


@pytest.mark.parametrize("signal", ["mean", "best"])
def test_best_feasible_point_is_the_known_constrained_optimum(signal):
    result = run(signal=signal, harm_budget=BUDGET)
    i = best_within_budget(result, BUDGET)
    assert result.X[i] == pytest.approx([BUDGET, 0.0], abs=0.01)
    assert -result.F[i, 1] == pytest.approx(UTILITY_OPT, abs=0.005)
    assert lambdas(result)[-1] == pytest.approx(LAMBDA_OPT, rel=0.03)  # the dual converges too


def test_guard_constraints_are_respected():
    """g = 0.3 - x1 <= 0 moves the optimum to (0.2, 0.3): utility 0.36 - 0.09 = 0.27."""

    def constrained(X, generation):
        return toy(X), (0.3 - X[:, 1])[:, None]

    result = run(constrained, n_constr=1, harm_budget=BUDGET)
    assert result.G.shape == (len(result.X), 1)
    i = best_within_budget(result, BUDGET)
    assert result.X[i] == pytest.approx([BUDGET, 0.3], abs=0.01)
    assert -result.F[i, 1] == pytest.approx(UTILITY_OPT - 0.09, abs=0.005)
    assert result.G[i, 0] <= 0


def test_unknown_objectives_neither_win_nor_move_lambda():
    def half_unknown(X, generation):
        F = toy(X)
        F[X[:, 1] > 0.5] = np.nan
        return F

    result = run(half_unknown, n_gen=12)
    assert all(math.isfinite(v) for v in lambdas(result))
    assert np.isnan(result.history[0].F).any()  # the Latin hypercube hits x1 > 0.5
    last = np.isnan(result.history[-1].F).any(axis=1).mean()
    assert last < 0.2  # selection moves away from them


def test_created_from_a_search_budget_and_logs_lambda():
    """From the registry with a search's harm budget (0.2 when it sets none); every log names lambda."""
    assert get_algorithm("lagrangian").options == {"harm_budget": 0.2}
    algorithm = get_algorithm("lagrangian", harm_budget=0.3)
    assert algorithm.options == {"harm_budget": 0.3}
    result = algorithm.run(Problem(toy, [0.0, 0.0], [1.0, 1.0], ref_point=REF), 6, 4, 0)
    assert all(set(log.extra) == {"lambda", "harm_signal", "lambda_next"} for log in result.history)


def test_focuses_on_the_budget_where_nsga2_spreads_over_the_front():
    """At the same budget NSGA-II covers more of the front (higher HV) while the Lagrangian search
    gets closer to the best configuration within the harm budget."""
    lag_utility, nsga_utility = [], []
    for seed in range(4):
        lag = run(n_var=3, pop_size=16, n_gen=20, seed=seed)
        moo = NSGA2().run(Problem(toy, [0.0] * 3, [1.0] * 3, ref_point=REF), 16, 20, seed)
        assert moo.history[-1].hypervolume > lag.history[-1].hypervolume
        lag_utility.append(-lag.F[best_within_budget(lag, BUDGET), 1])
        nsga_utility.append(-moo.F[best_within_budget(moo, BUDGET), 1])
        assert lag_utility[-1] == pytest.approx(UTILITY_OPT, abs=0.015)
    assert np.mean(lag_utility) > np.mean(nsga_utility)


def test_best_within_budget_none_when_nothing_qualifies():
    result = run(lambda X, g: np.column_stack([0.5 + 0.5 * X[:, 0], -X[:, 1]]), n_gen=2, pop_size=4)
    assert best_within_budget(result, 0.2) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"harm_budget": 1.5}, "harm_budget"),
    ({"lr": 0.0}, "lr"),
    ({"lambda_init": 0.0, "lambda_min": 0.0}, "lambda_min"),
    ({"lambda_init": 10.0, "lambda_max": 5.0}, "lambda_init"),
    ({"signal": "median"}, "signal"),
])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(SafetuneError, match=message):
        run(n_gen=1, pop_size=4, **kwargs)


def test_needs_two_objectives():
    with pytest.raises(SafetuneError, match="2 objectives"):
        LagrangianSearch().run(Problem(toy, [0.0], [1.0], n_obj=3, ref_point=(1, 1, 1)), 4, 1, 0)
