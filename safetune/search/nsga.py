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


@dataclass
class SearchResult:
    X: np.ndarray  # every evaluated vector, in order
    F: np.ndarray
    generation: np.ndarray  # generation index of each row
    history: list[GenerationLog] = field(default_factory=list)

    def front_indices(self) -> np.ndarray:
        return pareto_indices(self.F)


def pareto_indices(F: np.ndarray) -> np.ndarray:
    """Rows of F on the first non-dominated front (minimisation). NaN rows are never on it."""
    F = np.asarray(F, dtype=float)
    ok = np.where(np.all(np.isfinite(F), axis=1))[0]
    if ok.size == 0:
        return ok
    front = NonDominatedSorting().do(F[ok], only_non_dominated_front=True)
    return np.sort(ok[front])


def hypervolume(F: np.ndarray, ref_point) -> float:
    F = np.asarray(F, dtype=float)
    F = F[np.all(np.isfinite(F), axis=1)]
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
) -> SearchResult:
    """Run NSGA-II for ``n_gen`` generations; ``evaluate(X, generation)`` returns F (minimised)."""
    problem = Problem(n_var=len(xl), n_obj=n_obj, xl=np.asarray(xl, float), xu=np.asarray(xu, float))
    algorithm = NSGA2(
        pop_size=pop_size,
        sampling=initial_population(xl, xu, pop_size, seed, fixed),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, termination=("n_gen", n_gen), seed=seed, verbose=False)
    all_X, all_F, all_gen, history = [], [], [], []
    gen = 0
    while algorithm.has_next():
        pop = algorithm.ask()
        X = pop.get("X")
        F = np.asarray(evaluate(X, gen), dtype=float)
        # NaN objectives (e.g. every verdict unknown) must not win: treat as worst possible.
        F_safe = np.where(np.isfinite(F), F, np.asarray(ref_point, dtype=float))
        Evaluator().eval(StaticProblem(problem, F=F_safe), pop)
        algorithm.tell(infills=pop)
        all_X.append(X)
        all_F.append(F)
        all_gen.append(np.full(len(X), gen))
        so_far = np.concatenate(all_F)
        log = GenerationLog(gen, X, F, hypervolume(so_far, ref_point), len(pareto_indices(so_far)))
        history.append(log)
        if on_generation:
            on_generation(log)
        gen += 1
    return SearchResult(np.concatenate(all_X), np.concatenate(all_F), np.concatenate(all_gen), history)
