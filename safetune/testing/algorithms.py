"""What every search algorithm must do, checked on the toy objectives (``toys``).

A test module provides a fixture ``make_algorithm``: a callable returning a fresh algorithm.
"""

from __future__ import annotations

import numpy as np

from safetune.search.base import Problem
from safetune.search.front import feasible, hypervolume, pareto_indices
from safetune.testing import toys

XL, XU = [0.0] * 3, [1.0] * 3


def run(make_algorithm, evaluate=toys.zdt1, pop_size=10, n_gen=6, seed=0, n_constr=0, fixed=(), logs=None):
    problem = Problem(evaluate, XL, XU, n_obj=2, n_constr=n_constr, ref_point=toys.REF, fixed=fixed)
    return make_algorithm().run(problem, pop_size, n_gen, seed, logs.append if logs is not None else None)


class AlgorithmSuite:
    def test_one_evaluation_per_generation_with_the_whole_population(self, make_algorithm):
        calls, logs = [], []

        def evaluate(X, generation):
            calls.append((generation, np.array(X, copy=True)))
            return toys.zdt1(X)

        result = run(make_algorithm, evaluate, pop_size=12, n_gen=5, logs=logs)
        assert [g for g, _ in calls] == list(range(5))
        assert len(calls[0][1]) == 12 and all(0 < len(X) <= 12 for _, X in calls)
        assert np.array_equal(np.concatenate([X for _, X in calls]), result.X)
        assert [log.generation for log in logs] == list(range(5)) and logs == result.history

    def test_fixed_vectors_come_first_and_every_vector_is_in_bounds(self, make_algorithm):
        fixed = [[0.25, 0.5, 0.75], [0.9, 0.1, 0.3]]
        result = run(make_algorithm, pop_size=10, n_gen=3, fixed=fixed)
        assert np.array_equal(result.history[0].X[:2], np.array(fixed))
        assert np.all(result.X >= XL) and np.all(result.X <= XU)

    def test_result_rows_match_the_history_and_the_objective(self, make_algorithm):
        result = run(make_algorithm)
        assert np.array_equal(result.X, np.concatenate([log.X for log in result.history]))
        assert np.array_equal(result.F, np.concatenate([log.F for log in result.history]))
        assert np.array_equal(result.F, toys.zdt1(result.X))
        assert result.generation.tolist() == [log.generation for log in result.history for _ in log.X]
        assert result.G is None

    def test_hypervolume_and_front_size_cover_everything_so_far(self, make_algorithm):
        result = run(make_algorithm, n_gen=8)
        hv = [log.hypervolume for log in result.history]
        assert all(b >= a - 1e-12 for a, b in zip(hv, hv[1:]))  # over all points so far: never decreases
        for log in result.history:
            so_far = result.F[result.generation <= log.generation]
            assert np.isclose(log.hypervolume, hypervolume(so_far, toys.REF))
            assert log.front_size == len(pareto_indices(so_far))

    def test_same_seed_same_result_even_if_the_global_rng_moves(self, make_algorithm):
        a = run(make_algorithm, seed=7)
        np.random.seed(12345)
        np.random.random(100)
        b = run(make_algorithm, seed=7)
        c = run(make_algorithm, seed=8)
        assert np.array_equal(a.X, b.X) and np.array_equal(a.F, b.F)
        assert [h.extra for h in a.history] == [h.extra for h in b.history]
        assert not np.array_equal(a.X[:10], c.X[:10])

    def test_unknown_objectives_are_kept_but_never_on_the_front(self, make_algorithm):
        result = run(make_algorithm, toys.zdt1_with_failures, pop_size=16, n_gen=6)
        unknown = np.isnan(result.F).any(axis=1)
        assert unknown.any()  # the NaNs are kept in the record ...
        front = result.front_indices()
        assert front.size and not unknown[front].any()  # ... but never on the front
        assert all(np.isfinite(log.hypervolume) for log in result.history)

    def test_constraints_are_recorded_and_the_front_is_feasible(self, make_algorithm):
        result = run(make_algorithm, toys.zdt1_constrained, n_constr=1, pop_size=12, n_gen=5)
        assert result.G.shape == (len(result.X), 1)
        assert np.allclose(result.G[:, 0], 0.3 - result.X[:, 0])
        ok = feasible(result.G, len(result.X))
        assert ok.any() and ok[result.front_indices()].all()
        last = result.history[-1]
        assert np.isclose(last.hypervolume, hypervolume(result.F, toys.REF, result.G))

    def test_options_describe_the_algorithm_as_created(self, make_algorithm):
        algorithm = make_algorithm()
        assert isinstance(algorithm.options, dict) and algorithm.name
