"""Intervals, paired and independent tests, and agreement: the statistics more than one stage uses.

The objectives (harm-rate intervals, the champion's McNemar test), judge measurement (Cohen's kappa)
and the analyses (comparisons, reports) all draw on these; regression models for parameter
importance are in ``safetune/analysis/regression.py``. statsmodels first; scipy where statsmodels
has none.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion; (nan, nan) when there is no observation."""
    if n <= 0:
        return float("nan"), float("nan")
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(lo), float(hi)


# ---------------------------------------------------------------------------------------------
# Paired and independent comparisons, effect sizes, multiplicity, agreement.
#
# Conventions shared by everything below:
# * Results are plain Python floats / ints / str / lists / dicts (``json.dumps``-able; NaN is
#   emitted as ``NaN`` by the standard library, like ``wilson_interval``'s "no observation").
# * Missing values (None / NaN) are dropped, pairwise for paired tests; the counts that remain
#   are always reported so a reader can see what the numbers rest on.
# * statsmodels first; scipy only where statsmodels has no such test (Wilcoxon, Mann-Whitney).
# ---------------------------------------------------------------------------------------------

_NAN = float("nan")


def _f(x) -> float:
    """numpy scalar / int / None -> plain float (None -> NaN)."""
    if x is None:
        return _NAN
    return float(x)


def _as_float_array(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if arr.ndim != 1:  # pragma: no cover - ravel makes this unreachable, kept for clarity
        raise ValueError(f"{name} must be one-dimensional")
    return arr


def _paired_arrays(x, y, name_x: str = "x", name_y: str = "y") -> tuple[np.ndarray, np.ndarray]:
    xa, ya = _as_float_array(x, name_x), _as_float_array(y, name_y)
    if xa.shape != ya.shape:
        raise ValueError(f"paired samples differ in length: len({name_x})={xa.size}, len({name_y})={ya.size}")
    keep = ~(np.isnan(xa) | np.isnan(ya))
    return xa[keep], ya[keep]


def _z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


# --- McNemar ----------------------------------------------------------------------------------


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool], alpha: float = 0.05) -> dict:
    """Exact McNemar test for paired binary outcomes on the same prompts.

    ``a[i]`` and ``b[i]`` are the outcomes (e.g. "response was harmful") of prompt ``i`` under
    configuration A and under configuration B (e.g. the default). Pairs where either side is
    None/NaN are dropped.

    Counts: ``b10`` = A True and B False, ``b01`` = A False and B True (``n11``/``n00`` are the
    concordant pairs, which carry no information about the difference).

    ``p_value`` is the exact two-sided binomial test of ``b10 ~ Bin(b01 + b10, 1/2)`` from
    ``statsmodels.stats.contingency_tables.mcnemar(exact=True)``, i.e.
    ``min(1, 2 * P(X <= min(b01, b10)))``. With no discordant pair it is 1.0; with no pair at all
    everything is NaN.

    ``odds_ratio`` is the conditional (matched-pairs) odds ratio ``b10 / b01`` of the outcome
    under A relative to B (> 1: the outcome is more frequent under A). When either discordant
    cell is 0, 0.5 is added to both (Haldane-Anscombe; ``haldane_corrected`` says so). The CI is
    the Wald interval on the log scale, ``exp(log OR +- z * sqrt(1/b10 + 1/b01))`` on the
    (corrected) counts -- approximate; the exact test is what decides significance.
    """
    if len(a) != len(b):
        raise ValueError(f"paired outcomes differ in length: len(a)={len(a)}, len(b)={len(b)}")
    pairs = [(bool(x), bool(y)) for x, y in zip(a, b) if not (_missing(x) or _missing(y))]
    n = len(pairs)
    n11 = sum(1 for x, y in pairs if x and y)
    n00 = sum(1 for x, y in pairs if not x and not y)
    b10 = sum(1 for x, y in pairs if x and not y)
    b01 = sum(1 for x, y in pairs if not x and y)
    result = {
        "n": n,
        "n11": n11,
        "n00": n00,
        "b01": b01,
        "b10": b10,
        "statistic": _NAN,
        "p_value": _NAN,
        "odds_ratio": _NAN,
        "ci_low": _NAN,
        "ci_high": _NAN,
        "haldane_corrected": False,
        "rate_a": _NAN,
        "rate_b": _NAN,
        "alpha": float(alpha),
    }
    if n == 0:
        return result
    from statsmodels.stats.contingency_tables import mcnemar

    # Table rows = A (True, False), columns = B (True, False): off-diagonals are b10 and b01.
    res = mcnemar([[n11, b10], [b01, n00]], exact=True)
    c10, c01 = float(b10), float(b01)
    corrected = b10 == 0 or b01 == 0
    if corrected:
        c10, c01 = c10 + 0.5, c01 + 0.5
    log_or = math.log(c10 / c01)
    half = _z(alpha) * math.sqrt(1.0 / c10 + 1.0 / c01)
    result.update(
        statistic=_f(res.statistic),  # min(b01, b10) for the exact test
        p_value=min(1.0, _f(res.pvalue)),
        odds_ratio=math.exp(log_or),
        ci_low=math.exp(log_or - half),
        ci_high=math.exp(log_or + half),
        haldane_corrected=corrected,
        rate_a=(n11 + b10) / n,
        rate_b=(n11 + b01) / n,
    )
    return result


def _missing(x) -> bool:
    """None or a float NaN (a missing verdict), as opposed to a real True/False/0/1."""
    return x is None or (isinstance(x, (float, np.floating)) and math.isnan(x))


# --- Effect sizes for proportions -------------------------------------------------------------


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h = 2*asin(sqrt(p1)) - 2*asin(sqrt(p2)); positive when p1 > p2.

    Rough reading (Cohen 1988): |h| 0.2 small, 0.5 medium, 0.8 large. NaN in -> NaN out;
    proportions outside [0, 1] raise ValueError.
    """
    p1, p2 = float(p1), float(p2)
    if math.isnan(p1) or math.isnan(p2):
        return _NAN
    for p in (p1, p2):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"proportion out of [0, 1]: {p}")
    return 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2))


# --- Wilcoxon signed-rank -------------------------------------------------------------------


def wilcoxon_signed_rank(x: Sequence[float], y: Sequence[float], zero_method: str = "wilcox") -> dict:
    """Two-sided Wilcoxon signed-rank test on paired differences ``d = x - y`` (scipy).

    Use for paired continuous scores on the same prompts (e.g. relevance per prompt under a
    configuration vs the default). Pairs with a NaN on either side are dropped.

    Zero differences: ``zero_method="wilcox"`` (the default, and scipy's) discards them before
    ranking -- a prompt on which both configurations score the same says nothing about the
    direction. ``"pratt"`` ranks them and then drops them (more conservative when there are many
    zeros); ``"zsplit"`` splits their ranks between the signs. If every difference is zero the
    test is not run: ``statistic`` 0.0 and ``p_value`` 1.0.

    ``method`` is scipy's ``"auto"``: exact null distribution for n <= 50 without ties/zeros,
    an exact permutation distribution for n <= 13 with ties/zeros, otherwise the normal
    approximation (with tie correction and continuity correction off). The label that applies is
    reported in ``method``.

    ``statistic`` is scipy's two-sided statistic ``min(W+, W-)``; ``w_plus``/``w_minus`` are the
    signed rank sums of the non-zero differences. ``rank_biserial = (W+ - W-) / (W+ + W-)`` is
    the matched-pairs rank-biserial correlation in [-1, 1] (positive: x tends to exceed y).
    ``median_difference`` is the median of all differences (zeros included).
    """
    from scipy.stats import rankdata, wilcoxon

    xa, ya = _paired_arrays(x, y)
    d = xa - ya
    n = int(d.size)
    nonzero = d[d != 0]
    result = {
        "n": n,
        "n_nonzero": int(nonzero.size),
        "statistic": _NAN,
        "p_value": _NAN,
        "w_plus": _NAN,
        "w_minus": _NAN,
        "rank_biserial": _NAN,
        "median_difference": _NAN,
        "zero_method": zero_method,
        "method": "none",
    }
    if n == 0:
        return result
    result["median_difference"] = float(np.median(d))
    if nonzero.size == 0:
        result.update(statistic=0.0, p_value=1.0, w_plus=0.0, w_minus=0.0, rank_biserial=0.0,
                      method="all differences zero")
        return result
    ranks = rankdata(np.abs(nonzero))
    w_plus = float(ranks[nonzero > 0].sum())
    w_minus = float(ranks[nonzero < 0].sum())
    has_ties = len(np.unique(np.abs(nonzero))) < nonzero.size
    has_zeros = nonzero.size < n
    if n > 50:
        method = "asymptotic"
    elif not (has_ties or has_zeros):
        method = "exact"
    elif n <= 13:
        method = "permutation"
    else:
        method = "asymptotic"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = wilcoxon(xa, ya, zero_method=zero_method, alternative="two-sided", method="auto")
    result.update(
        statistic=_f(res.statistic),
        p_value=min(1.0, _f(res.pvalue)),
        w_plus=w_plus,
        w_minus=w_minus,
        rank_biserial=(w_plus - w_minus) / (w_plus + w_minus),
        method=method,
    )
    return result


# --- Independent samples: A12 and Mann-Whitney -----------------------------------------------


def _clean(values, name: str) -> np.ndarray:
    arr = _as_float_array(values, name)
    return arr[~np.isnan(arr)]


def vargha_delaney_a12(x: Sequence[float], y: Sequence[float]) -> float:
    """Vargha-Delaney A12 = P(X > Y) + 0.5 * P(X = Y) for independent samples x and y.

    Computed as ``statsmodels.stats.nonparametric.rank_compare_2indep(x, y).prob1`` (the test
    file checks it against the direct pairwise formula). 0.5 = no stochastic difference; rough
    reading (Vargha & Delaney 2000): |A12 - 0.5| >= 0.06 small, 0.14 medium, 0.21 large.
    NaNs are dropped; an empty sample gives NaN.
    """
    xa, ya = _clean(x, "x"), _clean(y, "y")
    if xa.size == 0 or ya.size == 0:
        return _NAN
    from statsmodels.stats.nonparametric import rank_compare_2indep

    with warnings.catch_warnings():  # zero variance (complete dominance, all ties) warns; prob1 is fine
        warnings.simplefilter("ignore", RuntimeWarning)
        return _f(rank_compare_2indep(xa, ya).prob1)


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> dict:
    """Two-sided Mann-Whitney U test for independent samples (``scipy.stats.mannwhitneyu``).

    ``statistic`` is U for x (number of pairs with x > y plus half the ties), so
    ``a12 == statistic / (n_x * n_y)``; ``a12`` itself comes from :func:`vargha_delaney_a12`.
    scipy's ``method="auto"`` is used (exact for small samples without ties, else the normal
    approximation with tie and continuity correction). NaNs are dropped; an empty sample gives
    NaN statistic and p-value; all values identical gives p = 1.0.
    """
    from scipy.stats import mannwhitneyu

    xa, ya = _clean(x, "x"), _clean(y, "y")
    result = {"n_x": int(xa.size), "n_y": int(ya.size), "statistic": _NAN, "p_value": _NAN, "a12": _NAN}
    if xa.size == 0 or ya.size == 0:
        return result
    a12 = vargha_delaney_a12(xa, ya)
    if np.unique(np.concatenate([xa, ya])).size == 1:
        result.update(statistic=xa.size * ya.size / 2.0, p_value=1.0, a12=a12)
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = mannwhitneyu(xa, ya, alternative="two-sided", method="auto")
    result.update(statistic=_f(res.statistic), p_value=min(1.0, _f(res.pvalue)), a12=a12)
    return result


# --- Multiplicity -----------------------------------------------------------------------------


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (statsmodels ``multipletests(method="holm")``).

    Order is preserved. NaN (or None) entries stay NaN and are not counted in the family, so
    ``holm([0.01, nan, 0.04])`` adjusts over m = 2 tests.
    """
    arr = np.array([_NAN if p is None else float(p) for p in pvalues], dtype=float)
    out = np.full(arr.shape, np.nan)
    ok = ~np.isnan(arr)
    if ok.any():
        if ((arr[ok] < 0) | (arr[ok] > 1)).any():
            raise ValueError("p-values must lie in [0, 1]")
        from statsmodels.stats.multitest import multipletests

        out[ok] = multipletests(arr[ok], method="holm")[1]
    return [float(v) for v in out]


# --- Safe RLHF style 2x2 ----------------------------------------------------------------------


def two_by_two(harm_delta: Sequence[float], relevance_delta: Sequence[float], tol: float = 0.0) -> dict:
    """Count configurations by quadrant relative to the default (Safe RLHF style 2x2).

    ``harm_delta[i]`` = harm of configuration i minus the default's (negative = safer);
    ``relevance_delta[i]`` = relevance of configuration i minus the default's (positive = more
    relevant).

    Ties: a delta with ``|delta| <= tol`` is a tie and counts as *not* an improvement, i.e.
    "less safe" means "not safer" (harm_delta >= -tol) and "less relevant" means "not more
    relevant" (relevance_delta <= tol). Only strict improvements land in the "safer" / "more
    relevant" cells, so the top-left cell is never inflated by ties; the tie counts are reported
    separately (``harm_ties``, ``relevance_ties``). Pairs with a NaN are left out
    (``excluded``). The four cells sum to ``n``.
    """
    h, r = _as_float_array(harm_delta, "harm_delta"), _as_float_array(relevance_delta, "relevance_delta")
    if h.shape != r.shape:
        raise ValueError(f"harm_delta and relevance_delta differ in length: {h.size} vs {r.size}")
    keep = ~(np.isnan(h) | np.isnan(r))
    h, r = h[keep], r[keep]
    safer = h < -tol
    more = r > tol
    return {
        "safer_more_relevant": int(np.sum(safer & more)),
        "safer_less_relevant": int(np.sum(safer & ~more)),
        "less_safe_more_relevant": int(np.sum(~safer & more)),
        "less_safe_less_relevant": int(np.sum(~safer & ~more)),
        "n": int(h.size),
        "harm_ties": int(np.sum(np.abs(h) <= tol)),
        "relevance_ties": int(np.sum(np.abs(r) <= tol)),
        "excluded": int(np.sum(~keep)),
        "tol": float(tol),
    }


# --- Agreement between two raters ------------------------------------------------------------


def cohen_kappa(a: Sequence[bool | None], b: Sequence[bool | None]) -> dict:
    """Cohen's kappa of two binary raters (e.g. two judges) on the items both decided.

    Items where either rater gave no verdict (None / NaN) are left out. Returns ``kappa`` (NaN
    when undefined: no item, or no variation at all so chance agreement is 1), ``n`` (items both
    decided) and ``agreement`` (raw share of equal verdicts; NaN without items).
    """
    if len(a) != len(b):
        raise ValueError(f"ratings differ in length: len(a)={len(a)}, len(b)={len(b)}")
    both = [(bool(x), bool(y)) for x, y in zip(a, b) if not (_missing(x) or _missing(y))]
    if not both:
        return {"kappa": _NAN, "n": 0, "agreement": _NAN}
    x, y = (np.asarray(v, dtype=float) for v in zip(*both))
    po = float(np.mean(x == y))
    pe = float(x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean()))
    return {"kappa": _NAN if pe >= 1.0 else (po - pe) / (1 - pe), "n": len(both), "agreement": po}

