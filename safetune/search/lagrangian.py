"""A Lagrangian search after Safe RLHF: one scalar objective, a multiplier learned by dual ascent.

Safe RLHF (Dai et al., 2023) maximises reward subject to expected cost <= budget by optimising
``reward - lambda * (cost - budget)`` and raising ``lambda`` while the cost is over budget,
lowering it while under. Here the "policy" is a single-objective genetic algorithm (pymoo ``GA``,
ask/tell, one evaluation call per population) over the same vectors NSGA-II sees:

* objectives come in as NSGA-II's: ``F[:, 0]`` = harm rate, ``F[:, 1]`` = -relevance (minimised);
* the GA minimises ``-utility + lambda * (harm - budget)`` = ``F[:, 1] + lambda * (F[:, 0] - budget)``;
* after each generation ``log lambda += lr * (signal - budget)``, clamped to
  ``[lambda_min, lambda_max]``; ``signal`` is the survivors' mean harm (``"mean"``, the expected
  cost of Safe RLHF) or the harm of the best survivor (``"best"``, the GA's incumbent);
* each generation the surviving population is re-scored with the current ``lambda`` before it
  competes with the offspring, so fitness values compared in one survival step all use one lambda.

Guard constraints ``G`` (if any) stay pymoo constraints (feasible first, then least violation).
Every evaluation is recorded by the same ``SearchAlgorithm.run`` loop as NSGA-II and random search,
so hypervolume per generation is comparable across the three; ``lambda`` and the signal are in
each log's ``extra``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from safetune.errors import SafetuneError
from safetune.search.base import Problem, PymooSearch, SearchResult
from safetune.search.front import feasible

DEFAULT_BUDGET = 0.2  # the harm budget when a search sets none
SIGNALS = ("mean", "best")
_OBJECTIVES = "objectives"  # per-individual raw (harm, -relevance), kept so survivors can be re-scored


@dataclass(frozen=True)
class DualAscent:
    """Log-space dual ascent on the multiplier: multiplicative steps keep lambda > 0 and scale-free."""

    budget: float = 0.2
    lr: float = 1.0
    lambda_init: float = 1.0
    lambda_min: float = 1e-3
    lambda_max: float = 1e3

    def __post_init__(self) -> None:
        if not 0 <= self.budget <= 1:
            raise SafetuneError(f"harm_budget must be in [0, 1] (got {self.budget})")
        if not self.lr > 0:
            raise SafetuneError(f"lagrangian lr must be > 0 (got {self.lr})")
        if not 0 < self.lambda_min <= self.lambda_init <= self.lambda_max < math.inf:
            raise SafetuneError(
                "lagrangian multipliers must satisfy 0 < lambda_min <= lambda_init <= lambda_max < inf "
                f"(got {self.lambda_min}, {self.lambda_init}, {self.lambda_max})"
            )

    def step(self, lam: float, harm_signal: float) -> float:
        """One update; an undefined signal (every harm unknown) leaves lambda where it is."""
        if not math.isfinite(harm_signal):
            return lam
        log_lam = math.log(lam) + self.lr * (harm_signal - self.budget)
        return float(min(max(math.exp(log_lam), self.lambda_min), self.lambda_max))


def lagrangian_fitness(F: np.ndarray, lam: float, budget: float, ref_point) -> np.ndarray:
    """Scalar to minimise, shape (n, 1): -utility + lambda * (harm - budget).

    Non-finite objectives are replaced by the hypervolume reference point (as NSGA-II does), so a
    candidate whose verdicts are all unknown can never win.
    """
    F = np.asarray(F, dtype=float)
    F = np.where(np.isfinite(F), F, np.asarray(ref_point, dtype=float))
    return (F[:, 1] + lam * (F[:, 0] - budget))[:, None]


def harm_signal(F: np.ndarray, fitness: np.ndarray, cv: np.ndarray, mode: str) -> float:
    """Harm fed to the dual update: survivors' mean (NaN harm ignored) or the best survivor's harm."""
    harm = np.asarray(F, dtype=float)[:, 0]
    if mode == "mean":
        return float(np.nanmean(harm)) if np.isfinite(harm).any() else math.nan
    best = np.lexsort([np.asarray(fitness, float).ravel(), np.asarray(cv, float).ravel()])[0]
    return float(harm[best])


class LagrangianSearch(PymooSearch):
    """The Lagrangian GA, with the same budget and result type as NSGA-II.

    ``problem.evaluate(X, generation)`` returns F (n, 2) = (harm rate, -relevance), or (F, G) when
    ``problem.n_constr`` > 0. Each log's ``extra`` holds ``lambda`` (the multiplier that ranked this
    generation), ``harm_signal`` and ``lambda_next`` (after the update).
    """

    name = "lagrangian"

    def __init__(self, harm_budget: float = DEFAULT_BUDGET, lr: float = 1.0, lambda_init: float = 1.0,
                 lambda_min: float = 1e-3, lambda_max: float = 1e3, signal: str = "mean"):
        if signal not in SIGNALS:
            raise SafetuneError(f"unknown lagrangian signal {signal!r}; known: {', '.join(SIGNALS)}")
        self.dual = DualAscent(harm_budget, lr, lambda_init, lambda_min, lambda_max)
        self.signal = signal

    @classmethod
    def create(cls, harm_budget: float | None = None) -> "LagrangianSearch":
        return cls(harm_budget=DEFAULT_BUDGET if harm_budget is None else harm_budget)

    @property
    def options(self) -> dict:
        return {"harm_budget": self.dual.budget}

    def pymoo_objectives(self, problem: Problem) -> int:
        if problem.n_obj != 2:
            raise SafetuneError(f"the lagrangian search needs exactly 2 objectives (harm, -relevance), got {problem.n_obj}")
        return 1  # the GA ranks one scalar: the Lagrangian

    def make(self, pop_size: int, sampling: np.ndarray):
        from pymoo.algorithms.soo.nonconvex.ga import GA

        return GA(pop_size=pop_size, sampling=sampling, eliminate_duplicates=True)

    def setup(self, problem: Problem, pop_size: int, n_gen: int, seed: int) -> None:
        super().setup(problem, pop_size, n_gen, seed)
        self.lam = self.dual.lambda_init

    def tell(self, X: np.ndarray, F: np.ndarray, G: np.ndarray | None) -> dict:
        ref, budget = self.problem.ref_point, self.dual.budget
        self.assign(lagrangian_fitness(F, self.lam, budget, ref), G)
        self.population.set(_OBJECTIVES, F)
        survivors = self.algorithm.pop
        if survivors is not None and len(survivors):  # survivors compete with the offspring under today's lambda
            survivors.set("F", lagrangian_fitness(survivors.get(_OBJECTIVES), self.lam, budget, ref))
        self.algorithm.tell(infills=self.population)
        survivors = self.algorithm.pop
        h = harm_signal(survivors.get(_OBJECTIVES), survivors.get("F"), survivors.get("CV"), self.signal)
        lam, self.lam = self.lam, self.dual.step(self.lam, h)
        return {"lambda": lam, "harm_signal": h, "lambda_next": self.lam}


def best_within_budget(result: SearchResult, budget: float) -> int | None:
    """Index of the most relevant evaluated point with harm <= budget (and guards satisfied), if any."""
    F = np.asarray(result.F, dtype=float)
    ok = np.all(np.isfinite(F), axis=1) & (F[:, 0] <= budget) & feasible(result.G, len(F))
    if not ok.any():
        return None
    idx = np.where(ok)[0]
    return int(idx[np.argmin(F[idx, 1])])
