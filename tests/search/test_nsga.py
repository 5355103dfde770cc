"""safetune/search/nsga.py: NSGA-II ask/tell loop, Pareto front and hypervolume, on analytic problems."""

from __future__ import annotations

import numpy as np
import pytest

from safetune.search.nsga import hypervolume, initial_population, nsga2, pareto_indices

REF = (1.1, 1.1)


def zdt1(X: np.ndarray, generation: int = 0) -> np.ndarray:
    """ZDT1 on [0, 1]^n: Pareto front at x[1:] = 0, where f2 = 1 - sqrt(f1)."""
    X = np.asarray(X, dtype=float)
    f1 = X[:, 0]
    g = 1 + 9 * X[:, 1:].mean(axis=1)
    return np.column_stack([f1, g * (1 - np.sqrt(f1 / g))])


# Area dominated by the true front inside the box [0, 1.1]^2:
#   int_0^1 (1.1 - (1 - sqrt f1)) df1  +  0.1 * 1.1  =  0.1 + 2/3 + 0.11
ZDT1_HV_OPT = 0.1 + 2 / 3 + 0.11


def run_zdt1(n_var=3, pop_size=20, n_gen=50, seed=0, **kwargs):
    return nsga2(zdt1, [0.0] * n_var, [1.0] * n_var, n_obj=2, pop_size=pop_size, n_gen=n_gen, seed=seed,
                 ref_point=REF, **kwargs)


# --- hypervolume and pareto_indices on hand-made points ---------------------------------------------


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


# --- the loop -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zdt1_run():
    return run_zdt1(n_var=3, pop_size=20, n_gen=50, seed=0)


def test_hypervolume_per_generation_is_non_decreasing(zdt1_run):
    hv = np.array([log.hypervolume for log in zdt1_run.history])
    assert len(hv) == 50
    assert np.all(np.diff(hv) >= -1e-12)
    assert hv[-1] > hv[0]  # the search actually improves


def test_history_hypervolume_and_front_size_cover_everything_so_far(zdt1_run):
    for log in zdt1_run.history:
        so_far = zdt1_run.F[zdt1_run.generation <= log.generation]
        assert log.hypervolume == pytest.approx(hypervolume(so_far, REF))
        assert log.front_size == len(pareto_indices(so_far))


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


def test_result_rows_match_history(zdt1_run):
    assert zdt1_run.X.shape == (len(zdt1_run.F), 3)
    assert np.array_equal(zdt1_run.X, np.concatenate([log.X for log in zdt1_run.history]))
    assert np.array_equal(zdt1_run.F, np.concatenate([log.F for log in zdt1_run.history]))
    assert np.array_equal(zdt1_run.F, zdt1(zdt1_run.X))
    for log in zdt1_run.history:
        assert np.all(zdt1_run.generation[zdt1_run.generation == log.generation] == log.generation)
        assert (zdt1_run.generation == log.generation).sum() == len(log.X)
    assert np.all(np.diff(zdt1_run.generation) >= 0)
    assert np.all(zdt1_run.X >= 0) and np.all(zdt1_run.X <= 1)


def test_same_seed_same_result_even_if_global_rng_moves():
    a = run_zdt1(pop_size=10, n_gen=6, seed=7)
    np.random.seed(12345)
    np.random.random(100)
    b = run_zdt1(pop_size=10, n_gen=6, seed=7)
    assert np.array_equal(a.X, b.X)
    assert np.array_equal(a.F, b.F)
    assert [h.hypervolume for h in a.history] == [h.hypervolume for h in b.history]


def test_different_seed_different_result():
    a = run_zdt1(pop_size=10, n_gen=6, seed=7)
    b = run_zdt1(pop_size=10, n_gen=6, seed=8)
    assert not np.array_equal(a.X[:10], b.X[:10])
    assert not np.array_equal(a.X, b.X)


def test_fixed_vectors_come_first_in_generation_zero():
    fixed = [[0.25, 0.5, 0.75], [0.9, 0.1, 0.3]]
    result = run_zdt1(pop_size=10, n_gen=3, seed=0, fixed=fixed)
    gen0 = result.history[0].X
    assert len(gen0) == 10
    assert np.array_equal(gen0[:2], np.array(fixed))
    assert np.array_equal(result.X[:2], np.array(fixed))


def test_evaluate_called_once_per_generation_with_whole_population():
    calls = []

    def evaluate(X, generation):
        calls.append((generation, np.array(X, copy=True)))
        return zdt1(X)

    pop_size, n_gen = 12, 5
    logs = []
    result = nsga2(evaluate, [0.0] * 3, [1.0] * 3, n_obj=2, pop_size=pop_size, n_gen=n_gen, seed=0,
                   ref_point=REF, on_generation=logs.append)
    assert [g for g, _ in calls] == list(range(n_gen))
    assert all(X.shape == (pop_size, 3) for _, X in calls)
    assert np.array_equal(np.concatenate([X for _, X in calls]), result.X)
    assert [log.generation for log in logs] == list(range(n_gen))
    assert logs == result.history


def test_nan_objectives_never_land_on_the_front():
    """Rows whose evaluation failed (NaN) would be the best ones if NaN were taken at face value."""
    def evaluate(X, generation):
        F = zdt1(X)
        bad = X[:, 0] < 0.5  # half the space "fails"
        F[bad] = np.nan
        return F

    result = nsga2(evaluate, [0.0] * 3, [1.0] * 3, n_obj=2, pop_size=16, n_gen=15, seed=0, ref_point=REF)
    nan_rows = np.isnan(result.F).any(axis=1)
    assert nan_rows.any()  # the NaNs are kept in the record ...
    front = result.front_indices()
    assert front.size > 0
    assert not nan_rows[front].any()  # ... but never on the front
    assert np.all(result.X[front, 0] >= 0.5)
    for log in result.history:
        assert np.isfinite(log.hypervolume)
    # The search learns to avoid the failing half: later generations fail less than the first.
    first = np.isnan(result.history[0].F).any(axis=1).mean()
    last = np.isnan(result.history[-1].F).any(axis=1).mean()
    assert last < first


def test_random_search_baseline_same_budget_and_nsga2_beats_it_on_zdt1():
    """Same budget, same first population; NSGA-II should end with a larger hypervolume on ZDT1."""
    from safetune.search.nsga import random_search

    def zdt1(X, gen):
        f1 = X[:, 0]
        g = 1 + 9 * X[:, 1:].mean(axis=1)
        return np.c_[f1, g * (1 - np.sqrt(f1 / g))]

    xl, xu = [0.0] * 3, [1.0] * 3
    wins = 0
    for seed in range(3):
        rs = random_search(zdt1, xl, xu, 2, 20, 15, seed, [1.1, 11.0])
        ga = nsga2(zdt1, xl, xu, 2, 20, 15, seed, [1.1, 11.0])
        assert len(rs.X) == len(ga.X) == 300
        assert np.allclose(rs.X[:20], ga.X[:20])  # identical generation 0
        assert all(a.hypervolume <= b.hypervolume for a, b in zip(rs.history, rs.history[1:]))
        wins += ga.history[-1].hypervolume > rs.history[-1].hypervolume
    assert wins == 3
