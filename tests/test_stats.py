"""safetune.stats against known values: hand computations, textbook examples, scipy/statsmodels oracles."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from safetune.stats import (
    cohen_kappa,
    cohens_h,
    holm,
    mann_whitney,
    mcnemar_exact,
    two_by_two,
    vargha_delaney_a12,
    wilcoxon_signed_rank,
)

Z95 = 1.959963984540054


def _pairs(n11: int, b10: int, b01: int, n00: int) -> tuple[list[bool], list[bool]]:
    a = [True] * n11 + [True] * b10 + [False] * b01 + [False] * n00
    b = [True] * n11 + [False] * b10 + [True] * b01 + [False] * n00
    return a, b


# --- McNemar ----------------------------------------------------------------------------------


def test_mcnemar_exact_hand_computed():
    a, b = _pairs(n11=5, b10=9, b01=1, n00=5)
    r = mcnemar_exact(a, b)
    assert (r["b10"], r["b01"], r["n11"], r["n00"], r["n"]) == (9, 1, 5, 5, 20)
    # Two-sided binomial: 2 * P(X <= 1 | n=10, p=1/2) = 2 * (1 + 10) / 1024
    assert r["p_value"] == pytest.approx(22 / 1024, abs=1e-12)
    assert r["p_value"] == pytest.approx(0.02148, abs=1e-5)
    assert r["odds_ratio"] == pytest.approx(9.0)
    assert not r["haldane_corrected"]
    half = Z95 * math.sqrt(1 / 9 + 1 / 1)
    assert r["ci_low"] == pytest.approx(9 * math.exp(-half))
    assert r["ci_high"] == pytest.approx(9 * math.exp(half))
    assert r["ci_low"] == pytest.approx(1.140, abs=1e-3)
    assert r["rate_a"] == pytest.approx(14 / 20) and r["rate_b"] == pytest.approx(6 / 20)
    json.dumps(r)


def test_mcnemar_symmetry_and_scipy_binomtest_oracle():
    a, b = _pairs(n11=3, b10=2, b01=11, n00=7)
    r, swapped = mcnemar_exact(a, b), mcnemar_exact(b, a)
    assert r["p_value"] == pytest.approx(sps.binomtest(2, 13, 0.5).pvalue)
    assert swapped["p_value"] == pytest.approx(r["p_value"])
    assert swapped["odds_ratio"] == pytest.approx(1 / r["odds_ratio"])


def test_mcnemar_haldane_and_degenerate():
    a, b = _pairs(n11=4, b10=3, b01=0, n00=4)
    r = mcnemar_exact(a, b)
    assert r["haldane_corrected"]
    assert r["odds_ratio"] == pytest.approx(3.5 / 0.5)
    assert r["p_value"] == pytest.approx(2 / 8)  # 2 * P(X <= 0 | n=3)
    assert math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"])

    same = mcnemar_exact([True, False, True], [True, False, True])
    assert same["p_value"] == 1.0 and same["odds_ratio"] == pytest.approx(1.0)

    empty = mcnemar_exact([], [])
    assert empty["n"] == 0 and math.isnan(empty["p_value"])

    # missing verdicts are dropped pairwise
    r = mcnemar_exact([True, None, float("nan"), False], [False, True, True, False])
    assert r["n"] == 2 and r["b10"] == 1

    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


# --- Cohen's h ----------------------------------------------------------------------------------


def test_cohens_h_known_value():
    # 2*asin(sqrt(.5)) = pi/2; 2*asin(sqrt(.2)) = 2*atan(1/2) = atan(4/3); difference = atan(3/4)
    assert cohens_h(0.5, 0.2) == pytest.approx(0.6435011087932844, abs=1e-12)
    assert cohens_h(0.5, 0.2) == pytest.approx(math.atan(0.75))
    assert cohens_h(0.2, 0.5) == pytest.approx(-math.atan(0.75))
    assert cohens_h(1.0, 0.0) == pytest.approx(math.pi)
    assert math.isnan(cohens_h(float("nan"), 0.1))
    with pytest.raises(ValueError):
        cohens_h(1.2, 0.1)


# --- Wilcoxon -----------------------------------------------------------------------------------

# Darwin's Zea mays data (Fisher 1935): cross- minus self-fertilised height differences, the
# example in scipy.stats.wilcoxon's documentation: W = 24, exact two-sided p = 0.041259765625.
DARWIN = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]


def test_wilcoxon_textbook_example_and_scipy_oracle():
    r = wilcoxon_signed_rank(DARWIN, [0] * len(DARWIN))
    assert r["statistic"] == 24.0
    assert r["p_value"] == pytest.approx(0.041259765625, abs=1e-12)
    oracle = sps.wilcoxon(DARWIN)
    assert r["p_value"] == pytest.approx(oracle.pvalue) and r["statistic"] == oracle.statistic
    assert r["method"] == "exact"
    assert (r["w_minus"], r["w_plus"]) == (24.0, 120 - 24.0)  # ranks of -48 (10) and -67 (14)
    assert r["median_difference"] == 24.0  # 8th of the 15 sorted differences
    json.dumps(r)


def test_wilcoxon_hand_verified():
    # All six differences positive: only 1 of the 2^6 sign patterns is as extreme on each side.
    r = wilcoxon_signed_rank([1, 2, 3, 4, 5, 6], [0] * 6)
    assert r["p_value"] == pytest.approx(2 / 64)
    assert r["rank_biserial"] == 1.0
    # d = 1,-2,3,4,5,6: W- = 2; sign patterns with W <= 2 are {}, {1}, {2}: p = 2 * 3/64
    x = [11, 8, 13, 14, 15, 16]
    r = wilcoxon_signed_rank(x, [10] * 6)
    assert r["statistic"] == 2.0
    assert r["p_value"] == pytest.approx(6 / 64)
    assert r["rank_biserial"] == pytest.approx((19 - 2) / 21)


def test_wilcoxon_zeros_and_nans():
    r = wilcoxon_signed_rank([0.3, 0.5, 0.7], [0.3, 0.5, 0.7])
    assert r["p_value"] == 1.0 and r["statistic"] == 0.0 and r["median_difference"] == 0.0
    r = wilcoxon_signed_rank([1.0, 2.0, float("nan"), 4.0], [0.0, 2.0, 1.0, 1.0])
    assert r["n"] == 3 and r["n_nonzero"] == 2
    assert r["p_value"] == pytest.approx(sps.wilcoxon([1.0, 0.0, 3.0], zero_method="wilcox").pvalue)
    assert math.isnan(wilcoxon_signed_rank([], [])["p_value"])


# --- A12 and Mann-Whitney -------------------------------------------------------------------------


def _a12_direct(x, y) -> float:
    x, y = np.asarray(x, float)[:, None], np.asarray(y, float)[None, :]
    return float(((x > y).sum() + 0.5 * (x == y).sum()) / (x.size * y.size))


def test_a12_hand_and_formula_vs_statsmodels():
    # pairs x>y: 0+1+3+4 = 8, ties: 1+2+1 = 4 -> (8 + 2) / 16
    assert vargha_delaney_a12([1, 2, 3, 4], [2, 2, 3, 1]) == pytest.approx(0.625)
    assert vargha_delaney_a12([10, 11], [1, 2]) == 1.0
    assert vargha_delaney_a12([1, 2], [10, 11]) == 0.0
    rng = np.random.default_rng(7)
    for _ in range(5):
        x = rng.integers(0, 6, size=rng.integers(3, 30))  # many ties
        y = rng.integers(0, 6, size=rng.integers(3, 30))
        assert vargha_delaney_a12(x, y) == pytest.approx(_a12_direct(x, y), abs=1e-12)
    assert math.isnan(vargha_delaney_a12([], [1.0]))


def test_mann_whitney_matches_scipy_and_a12():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0.5, 1, 25), rng.normal(0, 1, 30)
    r = mann_whitney(x, y)
    oracle = sps.mannwhitneyu(x, y, alternative="two-sided")
    assert r["p_value"] == pytest.approx(oracle.pvalue)
    assert r["statistic"] == pytest.approx(oracle.statistic)
    assert r["a12"] == pytest.approx(r["statistic"] / (25 * 30))
    assert r["a12"] == pytest.approx(_a12_direct(x, y))
    json.dumps(r)
    same = mann_whitney([1, 1, 1], [1, 1])
    assert same["p_value"] == 1.0 and same["a12"] == 0.5


# --- Holm ---------------------------------------------------------------------------------------


def test_holm_known_values_and_nan():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.01, float("nan"), 0.04])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []
    assert all(isinstance(v, float) for v in holm([0.2, None]))


# --- 2x2 ----------------------------------------------------------------------------------------


def test_two_by_two_counts_and_ties():
    harm = [-0.1, -0.2, 0.1, 0.05, 0.0, -0.1, float("nan"), -0.3]
    rel = [0.2, -0.1, 0.3, -0.2, 0.1, 0.0, 0.5, 0.4]
    r = two_by_two(harm, rel)
    # safer & more: idx 0, 7; safer & less: 1, 5 (relevance tie -> "less"); less safe & more:
    # 2, 4 (harm tie -> "less safe"); less safe & less: 3; idx 6 excluded (NaN).
    assert r["safer_more_relevant"] == 2
    assert r["safer_less_relevant"] == 2
    assert r["less_safe_more_relevant"] == 2
    assert r["less_safe_less_relevant"] == 1
    assert (r["n"], r["excluded"], r["harm_ties"], r["relevance_ties"]) == (7, 1, 1, 1)
    json.dumps(r)
    r = two_by_two([-0.01, 0.3], [0.01, 0.3], tol=0.02)
    assert r["less_safe_less_relevant"] == 1 and r["less_safe_more_relevant"] == 1


def test_cohen_kappa_hand_computed_and_unknowns_left_out():
    # 4 items both decided (the None row is left out): agree on 3; p_o = 0.75, p_e = 0.5 * 0.25 + 0.5 * 0.75.
    k = cohen_kappa([True, True, False, False, None], [True, False, False, False, True])
    assert k["n"] == 4 and k["agreement"] == 0.75
    assert k["kappa"] == pytest.approx((0.75 - 0.5) / (1 - 0.5))
    from sklearn.metrics import cohen_kappa_score

    assert k["kappa"] == pytest.approx(cohen_kappa_score([1, 1, 0, 0], [1, 0, 0, 0]))


def test_cohen_kappa_known_values():
    assert cohen_kappa([True, False, True, False], [True, False, True, False])["kappa"] == pytest.approx(1.0)
    assert cohen_kappa([True, True, False, False], [False, False, True, True])["kappa"] == pytest.approx(-1.0)
    # po = 0.75, pe = 0.5*0.75 + 0.5*0.25 = 0.5 -> kappa 0.5
    assert cohen_kappa([True, True, False, False], [True, True, True, False])["kappa"] == pytest.approx(0.5)


def test_cohen_kappa_undefined_is_nan():
    assert math.isnan(cohen_kappa([True, True], [True, True])["kappa"])  # no variation: chance agreement 1
    empty = cohen_kappa([None], [True])
    assert empty["n"] == 0 and math.isnan(empty["kappa"]) and math.isnan(empty["agreement"])
    with pytest.raises(ValueError):
        cohen_kappa([True], [])

