"""What every search algorithm shares: the problem it is given, the ask/tell loop and the trace.

An algorithm sees candidates as vectors in [xl, xu] and objective values only (no model, no
text). ``SearchAlgorithm.run`` asks it for a whole population, evaluates it with one call of
``problem.evaluate(X, generation)`` (so the caller can batch generation across candidates), tells
it the values and records them. Objectives are minimised; constraint values G <= 0 are feasible.
The hypervolume of everything evaluated so far is recorded after every generation against a fixed
reference point, so values compare across generations, seeds, algorithms and searches.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from safetune.search.front import hypervolume, pareto_indices


@dataclass(frozen=True)
class Problem:
    """What a search is asked to minimise."""

    # evaluate(X, generation) -> F of shape (n, n_obj), or (F, G) with G of shape (n, n_constr) when
    # n_constr > 0. NaN objectives (e.g. every verdict unknown) are allowed and never win.
    evaluate: Callable[[np.ndarray, int], Any]
    xl: Sequence[float]
    xu: Sequence[float]
    n_obj: int = 2
    n_constr: int = 0
    ref_point: Sequence[float] = (1.0, 0.0)  # hypervolume reference point (minimised objectives)
    fixed: Sequence[Sequence[float]] = ()  # vectors evaluated first, in generation 0 (e.g. the model default)


@dataclass
class GenerationLog:
    generation: int
    X: np.ndarray
    F: np.ndarray
    hypervolume: float  # of the front of everything evaluated up to this generation
    front_size: int
    # Algorithm-specific per-generation values (e.g. the Lagrangian search's multiplier).
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


class Trace:
    """Everything evaluated so far, and the per-generation log every algorithm reports."""

    def __init__(self, ref_point, n_constr: int, on_generation: Callable[[GenerationLog], None] | None = None):
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


def split_output(out, n_rows: int, n_constr: int) -> tuple[np.ndarray, np.ndarray | None]:
    """evaluate() returns F, or (F, G) with constraints; G is shaped (rows, n_constr)."""
    F, G = (out if n_constr else (out, None))
    F = np.asarray(F, dtype=float)
    if n_constr:
        G = np.asarray(G, dtype=float).reshape(n_rows, n_constr)
    return F, G


def initial_population(xl, xu, pop_size: int, seed: int, fixed=None) -> np.ndarray:
    """Latin-hypercube sample, with the given vectors (e.g. the model's default) placed first."""
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.operators.sampling.lhs import LHS

    fixed = [list(v) for v in (fixed or [])][:pop_size]
    n_random = pop_size - len(fixed)
    problem = PymooProblem(n_var=len(xl), xl=np.asarray(xl, float), xu=np.asarray(xu, float))
    rows = list(fixed)
    if n_random > 0:
        rows += LHS().do(problem, n_random, random_state=np.random.default_rng(seed)).get("X").tolist()
    return np.asarray(rows, dtype=float)


class SearchAlgorithm(abc.ABC):
    """An ask/tell search: ``setup`` once, then ``ask`` a population and ``tell`` its values per generation."""

    name: str = ""

    @classmethod
    def create(cls, harm_budget: float | None = None) -> "SearchAlgorithm":
        """The algorithm with a search's settings; only an algorithm that constrains harm uses the budget."""
        return cls()

    @property
    def options(self) -> dict:
        """The settings this algorithm was created with, as a search logs them."""
        return {}

    @abc.abstractmethod
    def setup(self, problem: Problem, pop_size: int, n_gen: int, seed: int) -> None:
        """Prepare a run of ``n_gen`` populations of ``pop_size`` (the first holds ``problem.fixed``)."""

    @abc.abstractmethod
    def ask(self, generation: int) -> np.ndarray | None:
        """The next population's vectors, or None when the budget is spent (or nothing new is left)."""

    @abc.abstractmethod
    def tell(self, X: np.ndarray, F: np.ndarray, G: np.ndarray | None) -> dict:
        """The asked population's values; returns algorithm-specific values for the generation's log."""

    def run(self, problem: Problem, pop_size: int, n_gen: int, seed: int,
            on_generation: Callable[[GenerationLog], None] | None = None) -> SearchResult:
        self.setup(problem, pop_size, n_gen, seed)
        trace = Trace(problem.ref_point, problem.n_constr, on_generation)
        generation = 0
        while (X := self.ask(generation)) is not None:
            F, G = split_output(problem.evaluate(X, generation), len(X), problem.n_constr)
            trace.record(generation, X, F, G, self.tell(X, F, G))
            generation += 1
        return trace.result()


class PymooSearch(SearchAlgorithm):
    """A pymoo algorithm driven ask/tell: subclasses build it and decide the fitness it sees."""

    @abc.abstractmethod
    def make(self, pop_size: int, sampling: np.ndarray):
        """The pymoo algorithm, its first population being ``sampling``."""

    def pymoo_objectives(self, problem: Problem) -> int:
        return problem.n_obj

    def setup(self, problem: Problem, pop_size: int, n_gen: int, seed: int) -> None:
        from pymoo.core.problem import Problem as PymooProblem

        self.problem = problem
        self.pymoo_problem = PymooProblem(n_var=len(problem.xl), n_obj=self.pymoo_objectives(problem),
                                          n_ieq_constr=problem.n_constr,
                                          xl=np.asarray(problem.xl, float), xu=np.asarray(problem.xu, float))
        self.algorithm = self.make(pop_size, initial_population(problem.xl, problem.xu, pop_size, seed, problem.fixed))
        self.algorithm.setup(self.pymoo_problem, termination=("n_gen", n_gen), seed=seed, verbose=False)
        self.population = None

    def ask(self, generation: int) -> np.ndarray | None:
        if not self.algorithm.has_next():
            return None
        self.population = self.algorithm.ask()
        if self.population is None or len(self.population) == 0:  # duplicate elimination left nothing new
            return None
        return self.population.get("X")

    def assign(self, fitness: np.ndarray, G: np.ndarray | None) -> None:
        """Give the asked population its fitness (and constraints, NaN = satisfied) as pymoo sees them."""
        from pymoo.core.evaluator import Evaluator
        from pymoo.problems.static import StaticProblem

        if self.problem.n_constr:
            static = StaticProblem(self.pymoo_problem, F=fitness, G=np.nan_to_num(G, nan=0.0))
        else:
            static = StaticProblem(self.pymoo_problem, F=fitness)
        Evaluator().eval(static, self.population)
