"""NSGA-II as an ask/tell loop (pymoo): one evaluation call per population.

``evaluate(X) -> F`` gets a whole population at once so the caller can batch generation across
candidates. Objectives are minimised. Hypervolume is computed with a fixed reference point over
every point evaluated so far, so values are comparable across generations, seeds and searches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.evaluator import Evaluator
from pymoo.core.problem import Problem
from pymoo.indicators.hv import HV
from pymoo.operators.sampling.lhs import LHS
from pymoo.problems.static import StaticProblem
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


@dataclass
class GenerationLog:
    generation: int
    X: np.ndarray
    F: np.ndarray
    hypervolume: float  # of the front of everything evaluated up to this generation
    front_size: int
    # Algorithm-specific per-generation values (e.g. the Lagrangian search's multiplier), logged by the runner.
    extra: dict = field(default_factory=dict)


@dataclass
class SearchResult:
    X: np.ndarray  # every evaluated vector, in order
    F: np.ndarray
    generation: np.ndarray  # generation index of each row
    history: list[GenerationLog] = field(default_factory=list)
    G: np.ndarray | None = None  # constraint values (<= 0 is feasible), if any

    def front_indices(self) -> np.ndarray:
        return pareto_indices(self.F, self.G)


def feasible(G: np.ndarray | None, n: int) -> np.ndarray:
    """Mask of rows satisfying every constraint (g <= 0); NaN constraints count as satisfied."""
    if G is None or np.size(G) == 0:
        return np.ones(n, dtype=bool)
    G = np.nan_to_num(np.asarray(G, dtype=float).reshape(n, -1), nan=0.0)
    return np.all(G <= 0, axis=1)


def pareto_indices(F: np.ndarray, G: np.ndarray | None = None) -> np.ndarray:
    """Rows of F on the first non-dominated front (minimisation) among feasible rows.

    NaN rows are never on it. With constraints and no feasible row, the front is taken over all.
    """
    F = np.asarray(F, dtype=float)
    mask = np.all(np.isfinite(F), axis=1)
    if G is not None and (mask & feasible(G, len(F))).any():
        mask &= feasible(G, len(F))
    ok = np.where(mask)[0]
    if ok.size == 0:
        return ok
    front = NonDominatedSorting().do(F[ok], only_non_dominated_front=True)
    return np.sort(ok[front])


def hypervolume(F: np.ndarray, ref_point, G: np.ndarray | None = None) -> float:
    """HV of the feasible, finite points against a fixed reference point."""
    F = np.asarray(F, dtype=float)
    F = F[np.all(np.isfinite(F), axis=1) & feasible(G, len(F))]
    if F.size == 0:
        return 0.0
    return float(HV(ref_point=np.asarray(ref_point, dtype=float))(F))


def initial_population(xl, xu, pop_size: int, seed: int, fixed: list[list[float]] | None = None) -> np.ndarray:
    """Latin-hypercube sample, with the given vectors (e.g. the model's default) placed first."""
    fixed = [list(v) for v in (fixed or [])][:pop_size]
    n_random = pop_size - len(fixed)
    problem = Problem(n_var=len(xl), xl=np.asarray(xl, float), xu=np.asarray(xu, float))
    rows = list(fixed)
    if n_random > 0:
        rows += LHS().do(problem, n_random, random_state=np.random.default_rng(seed)).get("X").tolist()
    return np.asarray(rows, dtype=float)


class _Trace:
    """Everything evaluated so far, and the per-generation log both algorithms report."""

    def __init__(self, ref_point, n_constr: int, on_generation):
        self.ref_point, self.n_constr, self.on_generation = ref_point, n_constr, on_generation
        self.X, self.F, self.G, self.gen, self.history = [], [], [], [], []

    def record(self, gen: int, X: np.ndarray, F: np.ndarray, G: np.ndarray | None, extra: dict | None = None) -> None:
        self.X.append(X)
        self.F.append(F)
        if self.n_constr:
            self.G.append(G)
        self.gen.append(np.full(len(X), gen))
        so_far = np.concatenate(self.F)
        G_so_far = np.concatenate(self.G) if self.G else None
        log = GenerationLog(gen, X, F, hypervolume(so_far, self.ref_point, G_so_far),
                            len(pareto_indices(so_far, G_so_far)), dict(extra or {}))
        self.history.append(log)
        if self.on_generation:
            self.on_generation(log)

    def result(self) -> SearchResult:
        return SearchResult(np.concatenate(self.X), np.concatenate(self.F), np.concatenate(self.gen),
                            self.history, np.concatenate(self.G) if self.G else None)


def _split_output(out, n_rows: int, n_constr: int):
    """evaluate() returns F, or (F, G) with constraints; G is shaped (rows, n_constr)."""
    F, G = (out if n_constr else (out, None))
    F = np.asarray(F, dtype=float)
    if n_constr:
        G = np.asarray(G, dtype=float).reshape(n_rows, n_constr)
    return F, G


def nsga2(
    evaluate: Callable[[np.ndarray, int], np.ndarray],
    xl,
    xu,
    n_obj: int,
    pop_size: int,
    n_gen: int,
    seed: int,
    ref_point,
    fixed: list[list[float]] | None = None,
    on_generation: Callable[[GenerationLog], None] | None = None,
    n_constr: int = 0,
) -> SearchResult:
    """Run NSGA-II for ``n_gen`` generations.

    ``evaluate(X, generation)`` returns F (minimised), or (F, G) when ``n_constr`` > 0 with G <= 0
    feasible; pymoo then ranks by constraint dominance (feasible first, then least violation).
    """
    problem = Problem(n_var=len(xl), n_obj=n_obj, n_ieq_constr=n_constr,
                      xl=np.asarray(xl, float), xu=np.asarray(xu, float))
    algorithm = NSGA2(
        pop_size=pop_size,
        sampling=initial_population(xl, xu, pop_size, seed, fixed),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, termination=("n_gen", n_gen), seed=seed, verbose=False)
    trace = _Trace(ref_point, n_constr, on_generation)
    gen = 0
    while algorithm.has_next():
        pop = algorithm.ask()
        X = pop.get("X")
        F, G = _split_output(evaluate(X, gen), len(X), n_constr)
        # NaN objectives (e.g. every verdict unknown) must not win: treat as worst possible.
        F_safe = np.where(np.isfinite(F), F, np.asarray(ref_point, dtype=float))
        if n_constr:
            Evaluator().eval(StaticProblem(problem, F=F_safe, G=np.nan_to_num(G, nan=0.0)), pop)
        else:
            Evaluator().eval(StaticProblem(problem, F=F_safe), pop)
        algorithm.tell(infills=pop)
        trace.record(gen, X, F, G)
        gen += 1
    return trace.result()


def random_search(
    evaluate: Callable[[np.ndarray, int], np.ndarray],
    xl,
    xu,
    n_obj: int,
    pop_size: int,
    n_gen: int,
    seed: int,
    ref_point,
    fixed: list[list[float]] | None = None,
    on_generation: Callable[[GenerationLog], None] | None = None,
    n_constr: int = 0,
) -> SearchResult:
    """The baseline with the same budget and bookkeeping: fresh Latin-hypercube batches per generation.

    Generation 0 is the same initial population NSGA-II starts from, so the two differ only in how
    they choose later candidates.
    """
    rng = np.random.default_rng(seed)
    trace = _Trace(ref_point, n_constr, on_generation)
    for gen in range(n_gen):
        if gen == 0:
            X = initial_population(xl, xu, pop_size, seed, fixed)
        else:
            X = initial_population(xl, xu, pop_size, int(rng.integers(2**31)), None)
        F, G = _split_output(evaluate(X, gen), len(X), n_constr)
        trace.record(gen, X, F, G)
    return trace.result()


def _lagrangian(*args, **kwargs) -> SearchResult:
    """Deferred import: safetune.search.lagrangian builds on this module's _Trace and sampling."""
    from safetune.search.lagrangian import lagrangian

    return lagrangian(*args, **kwargs)


ALGORITHMS = {"nsga2": nsga2, "random": random_search, "lagrangian": _lagrangian}
