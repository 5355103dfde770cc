"""NSGA-II (pymoo), ask/tell: one evaluation call per population."""

from __future__ import annotations

import numpy as np

from safetune.search.base import PymooSearch


class NSGA2(PymooSearch):
    """NSGA-II with constraint dominance (feasible first, then least violation) when there are constraints."""

    name = "nsga2"

    def make(self, pop_size: int, sampling: np.ndarray):
        from pymoo.algorithms.moo.nsga2 import NSGA2 as PymooNSGA2

        return PymooNSGA2(pop_size=pop_size, sampling=sampling, eliminate_duplicates=True)

    def tell(self, X: np.ndarray, F: np.ndarray, G: np.ndarray | None) -> dict:
        # NaN objectives (e.g. every verdict unknown) must not win: treat as worst possible.
        self.assign(np.where(np.isfinite(F), F, np.asarray(self.problem.ref_point, dtype=float)), G)
        self.algorithm.tell(infills=self.population)
        return {}
