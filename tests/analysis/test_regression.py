"""safetune/analysis/regression.py: importance models recover known effects, flag what they cannot fit."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from safetune.analysis.regression import linear_importance, logistic_importance

# --- Parameter importance -----------------------------------------------------------------------


def _simulated(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "temperature": rng.uniform(0, 2, n),
        "top_p": rng.uniform(0.1, 1, n),
        "repetition_penalty": rng.uniform(0.8, 1.3, n),
        "max_new_tokens": np.full(n, 64),  # constant: must be dropped
    })
    logit = -0.5 + 1.5 * (X["temperature"] - 1) - 4.0 * (X["repetition_penalty"] - 1.05)
    y = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    return X, y


def test_logistic_importance_recovers_signs_and_drops_constant():
    X, y = _simulated()
    out = logistic_importance(X, y)
    assert list(out.columns) == ["term", "coef", "ci_low", "ci_high", "p", "status"]
    row = out.set_index("term")
    assert row.loc["temperature", "coef"] > 0 and row.loc["temperature", "ci_low"] > 0
    assert row.loc["repetition_penalty", "coef"] < 0 and row.loc["repetition_penalty", "ci_high"] < 0
    assert row.loc["temperature", "p"] < 1e-6
    assert row.loc["top_p", "ci_low"] < 0 < row.loc["top_p", "ci_high"]  # null effect covers 0
    assert row.loc["max_new_tokens", "status"] == "dropped: constant"
    assert math.isnan(row.loc["max_new_tokens", "coef"])
    assert "Intercept" not in row.index
    assert out.attrs["constant"] == ["max_new_tokens"] and not out.attrs["separation"]
    json.dumps(out.to_dict("records"))


def test_logistic_importance_proportions_with_weights_match_binomial_counts():
    # One row per configuration: k harmful out of n responses. Proportion + freq weight must give
    # the same fit as statsmodels' binomial on (successes, failures) for the same standardised design.
    import statsmodels.api as sm

    rng = np.random.default_rng(1)
    m = 40
    X = pd.DataFrame({"temperature": rng.uniform(0, 2, m), "top_p": rng.uniform(0.1, 1, m)})
    trials = rng.integers(5, 40, m)
    k = rng.binomial(trials, 1 / (1 + np.exp(-(X["temperature"] - 1.0))))
    out = logistic_importance(X, k / trials, weights=trials, include_intercept=True)
    Z = (X - X.mean()) / X.std(ddof=1)
    oracle = sm.GLM(np.c_[k, trials - k], sm.add_constant(Z), family=sm.families.Binomial()).fit()
    assert out["coef"].to_numpy() == pytest.approx(oracle.params.to_numpy(), rel=1e-6)
    assert out["ci_low"].to_numpy() == pytest.approx(oracle.conf_int()[0].to_numpy(), rel=1e-6)
    assert out["p"].to_numpy() == pytest.approx(oracle.pvalues.to_numpy(), rel=1e-5)


def test_logistic_importance_separation_does_not_crash():
    x = np.linspace(0, 1, 30)
    X = pd.DataFrame({"temperature": x, "top_p": np.cos(7 * x)})
    y = (x > 0.5).astype(int)  # perfectly separated by temperature
    out = logistic_importance(X, y)
    assert out.attrs["separation"]
    row = out.set_index("term")
    assert row.loc["temperature", "status"].startswith("separation")
    assert math.isfinite(row.loc["temperature", "coef"]) and row.loc["temperature", "coef"] > 0
    assert math.isnan(row.loc["temperature", "ci_low"]) and math.isnan(row.loc["temperature", "p"])

    constant_y = logistic_importance(X, np.zeros(30))
    assert set(constant_y["status"]) == {"outcome constant"}
    tiny = logistic_importance(X.iloc[:2], [0, 1])
    assert set(tiny["status"]) == {"too few observations"}


def test_logistic_importance_categorical_and_nan_rows():
    rng = np.random.default_rng(5)
    n = 400
    X = pd.DataFrame({
        "temperature": rng.uniform(0, 2, n),
        "system_prompt": rng.choice(["default", "safety"], n),
        "greedy": rng.random(n) < 0.5,
    })
    logit = 0.8 * X["temperature"] - 2.0 * (X["system_prompt"] == "safety")
    y = rng.binomial(1, 1 / (1 + np.exp(-logit))).astype(float)
    y[0] = np.nan
    out = logistic_importance(X, y, include_intercept=True)
    row = out.set_index("term")
    assert "Intercept" in row.index and "greedy" in row.index
    assert row.loc["system_prompt=safety", "ci_high"] < 0
    assert out.attrs["n"] == n - 1 and out.attrs["dropped_rows"] == 1


def test_linear_importance_recovers_effects():
    rng = np.random.default_rng(11)
    n = 200
    X = pd.DataFrame({"temperature": rng.uniform(0, 2, n), "top_k": rng.integers(0, 50, n),
                      "const": np.ones(n)})
    y = 0.6 - 0.2 * X["temperature"] + rng.normal(0, 0.05, n)
    out = linear_importance(X, y).set_index("term")
    sd = X["temperature"].std(ddof=1)
    assert out.loc["temperature", "coef"] == pytest.approx(-0.2 * sd, rel=0.1)  # per-SD effect
    assert out.loc["temperature", "ci_high"] < 0
    assert out.loc["top_k", "ci_low"] < 0 < out.loc["top_k", "ci_high"]
    assert out.loc["const", "status"] == "dropped: constant"
    robust = linear_importance(X, y, cov_type="HC3", weights=np.ones(n))
    assert robust.attrs["model"] == "wls"
    assert set(linear_importance(X, np.full(n, 0.5))["status"]) == {"outcome constant", "dropped: constant"}


def test_collinear_parameters_are_flagged_not_split():
    rng = np.random.default_rng(2)
    n = 120
    t = rng.uniform(0, 2, n)
    X = pd.DataFrame({"a": t, "b": 2 * t, "c": rng.normal(size=n)})
    y = t + rng.normal(0, 0.1, n)
    out = linear_importance(X, y).set_index("term")
    assert out.loc["a", "status"] == out.loc["b", "status"] == "collinear: not identifiable"
    assert math.isnan(out.loc["a", "coef"]) and out.loc["c", "status"] == "ok"
    yb = (y > 1).astype(int)
    out = logistic_importance(X, yb)
    assert sorted(out.attrs["collinear"]) == ["a", "b"]
