"""Pareto fronts and hypervolume, with constraints (G <= 0 feasible) and unknown (NaN) objectives."""

from __future__ import annotations

import numpy as np


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
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

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
    from pymoo.indicators.hv import HV

    F = np.asarray(F, dtype=float)
    F = F[np.all(np.isfinite(F), axis=1) & feasible(G, len(F))]
    if F.size == 0:
        return 0.0
    return float(HV(ref_point=np.asarray(ref_point, dtype=float))(F))
