"""Analytic toy objectives with known optima, in the search's convention (minimised, F = (n, 2))."""

from __future__ import annotations

import numpy as np

REF = (1.1, 1.1)  # hypervolume reference point for ZDT1
# Area dominated by ZDT1's true front inside [0, 1.1]^2:
#   int_0^1 (1.1 - (1 - sqrt f1)) df1  +  0.1 * 1.1  =  0.1 + 2/3 + 0.11
ZDT1_HV_OPT = 0.1 + 2 / 3 + 0.11


def zdt1(X: np.ndarray, generation: int = 0) -> np.ndarray:
    """ZDT1 on [0, 1]^n: Pareto front at x[1:] = 0, where f2 = 1 - sqrt(f1)."""
    X = np.asarray(X, dtype=float)
    f1 = X[:, 0]
    g = 1 + 9 * X[:, 1:].mean(axis=1)
    return np.column_stack([f1, g * (1 - np.sqrt(f1 / g))])


def zdt1_with_failures(X: np.ndarray, generation: int = 0) -> np.ndarray:
    """ZDT1 where half the space (x0 < 0.5) "fails" (NaN objectives, like every verdict unknown).

    Taken at face value NaN rows would be the best ones; they must never reach the front.
    """
    F = zdt1(X)
    F[np.asarray(X)[:, 0] < 0.5] = np.nan
    return F


def zdt1_constrained(X: np.ndarray, generation: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """ZDT1 with one guard g = 0.3 - x0 <= 0 (feasible: x0 >= 0.3)."""
    return zdt1(X), (0.3 - np.asarray(X)[:, 0])[:, None]


def budget_toy(X: np.ndarray, generation: int = 0) -> np.ndarray:
    """harm = x0, utility = 1 - (x0 - 1)^2 - sum(x[1:]^2): under harm <= b the best point is (b, 0, ...)
    with utility 1 - (1 - b)^2, where the Lagrangian is stationary for lambda* = 2 (1 - b)."""
    X = np.asarray(X, dtype=float)
    utility = 1 - (X[:, 0] - 1) ** 2 - (X[:, 1:] ** 2).sum(axis=1)
    return np.column_stack([X[:, 0], -utility])
