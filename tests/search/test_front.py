"""safetune/search/front.py and base.initial_population: hypervolume, Pareto front, first population."""

from __future__ import annotations

import numpy as np
import pytest

from safetune.search.base import initial_population
from safetune.search.front import feasible, hypervolume, pareto_indices
from safetune.testing.toys import REF, ZDT1_HV_OPT

def test_analytic_optimum_matches_dense_sampling_of_the_true_front():
    f1 = np.linspace(0, 1, 20_001)
    front = np.column_stack([f1, 1 - np.sqrt(f1)])
    assert hypervolume(front, REF) == pytest.approx(ZDT1_HV_OPT, rel=1e-4)


def test_hypervolume_hand_computed_2d():
    # Staircase of (0.2, 0.8), (0.5, 0.4), (0.9, 0.1) against (1, 1):
    #   (1-0.2)*(1-0.8) + (1-0.5)*(0.8-0.4) + (1-0.9)*(0.4-0.1) = 0.16 + 0.20 + 0.03
    F = np.array([[0.2, 0.8], [0.5, 0.4], [0.9, 0.1]])
    assert hypervolume(F, (1.0, 1.0)) == pytest.approx(0.39)
    # Dominated points, points beyond the reference and NaN rows add nothing.
    extra = np.vstack([F, [[0.6, 0.6], [1.5, 0.0], [0.0, 2.0], [np.nan, 0.0], [0.0, np.inf]]])
    assert hypervolume(extra, (1.0, 1.0)) == pytest.approx(0.39)
    assert hypervolume([[0.0, 0.0]], (1.0, 2.0)) == pytest.approx(2.0)


def test_hypervolume_of_nothing_is_zero():
    assert hypervolume(np.empty((0, 2)), (1.0, 1.0)) == 0.0
    assert hypervolume([[np.nan, np.nan]], (1.0, 1.0)) == 0.0


def test_pareto_indices_hand_made():
    F = np.array([
        [0.0, 1.0],  # 0 front
        [1.0, 0.0],  # 1 front
        [0.5, 0.5],  # 2 front
        [0.6, 0.6],  # 3 dominated by 2
        [1.0, 1.0],  # 4 dominated by all
        [0.4, 0.9],  # 5 dominated by... nothing: f1 < 0.5, f2 < 1.0
        [0.5, 0.7],  # 6 dominated by 2
    ])
    assert pareto_indices(F).tolist() == [0, 1, 2, 5]


def test_pareto_indices_three_objectives():
    F = np.array([[1, 2, 3], [2, 1, 3], [2, 2, 3], [1, 2, 2]])
    assert pareto_indices(F).tolist() == [1, 3]


def test_pareto_indices_never_include_non_finite_rows():
    F = np.array([[0.5, 0.5], [np.nan, -10.0], [-10.0, np.nan], [-np.inf, -np.inf], [0.7, 0.7]])
    assert pareto_indices(F).tolist() == [0]
    assert pareto_indices(np.full((3, 2), np.nan)).size == 0


# --- initial population -------------------------------------------------------------------------------


def test_initial_population_puts_fixed_first_and_stays_in_bounds():
    xl, xu = [0.0, -1.0, 10.0], [1.0, 1.0, 20.0]
    fixed = [[0.5, 0.0, 15.0], [0.1, 0.9, 11.0]]
    X = initial_population(xl, xu, pop_size=8, seed=3, fixed=fixed)
    assert X.shape == (8, 3)
    assert np.array_equal(X[:2], np.array(fixed))
    assert np.all(X >= xl) and np.all(X <= xu)
    assert np.array_equal(X, initial_population(xl, xu, pop_size=8, seed=3, fixed=fixed))


def test_initial_population_truncates_too_many_fixed():
    fixed = [[i / 10] for i in range(5)]
    X = initial_population([0.0], [1.0], pop_size=3, seed=0, fixed=fixed)
    assert X.tolist() == fixed[:3]


def test_feasible_counts_nan_constraints_as_satisfied():
    G = np.array([[0.0, -1.0], [0.1, -1.0], [np.nan, -0.5]])
    assert feasible(G, 3).tolist() == [True, False, True]
    assert feasible(None, 2).tolist() == [True, True]
