"""NSGA-II (safetune/search/nsga2.py) on ZDT1: it converges to the known front and beats random search.

The ask/tell contract every algorithm shares is in tests/conformance/test_algorithms.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from safetune.search.base import Problem
from safetune.search.nsga2 import NSGA2
from safetune.search.random_search import RandomSearch
from safetune.testing.toys import REF, ZDT1_HV_OPT, zdt1, zdt1_with_failures


def run_zdt1(n_var=3, pop_size=20, n_gen=50, seed=0, algorithm=NSGA2, evaluate=zdt1, ref=REF):
    return algorithm().run(Problem(evaluate, [0.0] * n_var, [1.0] * n_var, ref_point=ref), pop_size, n_gen, seed)


@pytest.fixture(scope="module")
def zdt1_run():
    return run_zdt1(n_var=3, pop_size=20, n_gen=50, seed=0)


def test_hypervolume_improves_over_the_generations(zdt1_run):
    hv = np.array([log.hypervolume for log in zdt1_run.history])
    assert len(hv) == 50
    assert hv[-1] > hv[0]  # the search actually improves


def test_final_hypervolume_close_to_analytic_optimum(zdt1_run):
    final = zdt1_run.history[-1].hypervolume
    assert final <= ZDT1_HV_OPT + 1e-9
    assert final >= 0.98 * ZDT1_HV_OPT


def test_final_front_lies_near_the_true_front(zdt1_run):
    front = zdt1_run.F[zdt1_run.front_indices()]
    assert len(front) >= 10
    gap = front[:, 1] - (1 - np.sqrt(front[:, 0]))
    assert np.all(gap >= -1e-9)  # nothing beats the true front
    assert np.median(gap) < 0.05


@pytest.mark.parametrize("n_var", [2, 5])
def test_converges_on_2_and_5_variables(n_var):
    result = run_zdt1(n_var=n_var, pop_size=40, n_gen=40, seed=1)
    assert result.history[-1].hypervolume >= 0.97 * ZDT1_HV_OPT


def test_learns_to_avoid_failing_regions():
    """NaN objectives rank worst, so later generations fail less than the first."""
    result = run_zdt1(pop_size=16, n_gen=15, evaluate=zdt1_with_failures)
    assert np.all(result.X[result.front_indices(), 0] >= 0.5)
    first = np.isnan(result.history[0].F).any(axis=1).mean()
    last = np.isnan(result.history[-1].F).any(axis=1).mean()
    assert last < first


def test_random_search_baseline_same_budget_and_nsga2_beats_it_on_zdt1():
    """Same budget, same first population; NSGA-II should end with a larger hypervolume on ZDT1."""
    wins = 0
    for seed in range(3):
        rs = run_zdt1(pop_size=20, n_gen=15, seed=seed, algorithm=RandomSearch, ref=[1.1, 11.0])
        ga = run_zdt1(pop_size=20, n_gen=15, seed=seed, ref=[1.1, 11.0])
        assert len(rs.X) == len(ga.X) == 300
        assert np.allclose(rs.X[:20], ga.X[:20])  # identical generation 0
        wins += ga.history[-1].hypervolume > rs.history[-1].hypervolume
    assert wins == 3
