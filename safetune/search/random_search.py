"""Random search: the baseline with the same budget and bookkeeping as the other algorithms."""

from __future__ import annotations

import numpy as np

from safetune.search.base import Problem, SearchAlgorithm, initial_population


class RandomSearch(SearchAlgorithm):
    """Fresh Latin-hypercube batches per generation.

    Generation 0 is the same initial population NSGA-II starts from, so the two differ only in how
    they choose later candidates.
    """

    name = "random"

    def setup(self, problem: Problem, pop_size: int, n_gen: int, seed: int) -> None:
        self.problem, self.pop_size, self.n_gen, self.seed = problem, pop_size, n_gen, seed
        self.rng = np.random.default_rng(seed)

    def ask(self, generation: int) -> np.ndarray | None:
        p = self.problem
        if generation >= self.n_gen:
            return None
        if generation == 0:
            return initial_population(p.xl, p.xu, self.pop_size, self.seed, p.fixed)
        return initial_population(p.xl, p.xu, self.pop_size, int(self.rng.integers(2**31)), None)

    def tell(self, X: np.ndarray, F: np.ndarray, G: np.ndarray | None) -> dict:
        return {}  # nothing to learn: the next batch does not depend on this one
