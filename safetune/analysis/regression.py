"""Regression models for parameter importance: which knob moves a target, with intervals.

A binomial GLM for proportions (harm rate, weighted by the verdicts behind each) and OLS for
continuous targets, on z-scored numeric columns and dummy-coded categorical ones; constant and
collinear columns are reported as such rather than silently dropped or split. Used by
``importance.py``. Results are tidy DataFrames (``IMPORTANCE_COLUMNS``) of plain floats.
"""

from __future__ import annotations

import warnings

import numpy as np

_NAN = float("nan")


def _f(x) -> float:
    """numpy scalar / int / None -> plain float (None -> NaN)."""
    if x is None:
        return _NAN
    return float(x)


IMPORTANCE_COLUMNS = ["term", "coef", "ci_low", "ci_high", "p", "status"]


def _design(X, y, weights):
    """Complete cases, categorical -> dummies, constant columns split off, z-scored design."""
    import pandas as pd

    df = pd.DataFrame(X).copy()
    df.columns = [str(c) for c in df.columns]
    yv = np.asarray(y, dtype=float).ravel()
    if len(df) != yv.size:
        raise ValueError(f"X has {len(df)} rows but y has {yv.size}")
    wv = None if weights is None else np.asarray(weights, dtype=float).ravel()
    if wv is not None and wv.size != yv.size:
        raise ValueError(f"weights has {wv.size} entries but y has {yv.size}")
    for col in df.columns:
        if df[col].dtype == bool:
            df[col] = df[col].astype(float)
    categorical = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    keep = df.notna().all(axis=1).to_numpy() & ~np.isnan(yv)
    if wv is not None:
        keep &= ~np.isnan(wv) & (wv > 0)
    df, yv = df.loc[keep].reset_index(drop=True), yv[keep]
    wv = None if wv is None else wv[keep]
    if categorical:
        df = pd.get_dummies(df, columns=categorical, prefix_sep="=", drop_first=True, dtype=float)
    constant = [c for c in df.columns if df[c].nunique(dropna=True) <= 1]
    used = [c for c in df.columns if c not in constant]
    Z = df[used].astype(float)
    Z = (Z - Z.mean()) / Z.std(ddof=1)
    return Z, yv, wv, constant, int(np.sum(~keep))


def _tidy(terms, params=None, ci=None, pvals=None, status="ok"):
    rows = []
    for i, t in enumerate(terms):
        if params is None:
            rows.append([t, _NAN, _NAN, _NAN, _NAN, status])
        else:
            rows.append([
                t,
                _f(params[i]),
                _NAN if ci is None else _f(ci[i][0]),
                _NAN if ci is None else _f(ci[i][1]),
                _NAN if pvals is None else _f(pvals[i]),
                status,
            ])
    return rows


def _collinear(design: np.ndarray) -> list[int]:
    """Indices of design columns that are exact linear combinations of others (not identifiable)."""
    rank = np.linalg.matrix_rank(design)
    if rank == design.shape[1]:
        return []
    return [j for j in range(1, design.shape[1]) if np.linalg.matrix_rank(np.delete(design, j, axis=1)) == rank]


def _mark_collinear(rows, collinear: list[int]):
    """Blank the rows of non-identifiable terms (a pseudo-inverse fit gives them arbitrary values)."""
    for j in collinear:
        rows[j] = [rows[j][0], _NAN, _NAN, _NAN, _NAN, "collinear: not identifiable"]
    return rows


def _finish(rows, constant, include_intercept, attrs):
    import pandas as pd

    rows = rows + [[c, _NAN, _NAN, _NAN, _NAN, "dropped: constant"] for c in constant]
    out = pd.DataFrame(rows, columns=IMPORTANCE_COLUMNS)
    if not include_intercept:
        out = out[out["term"] != "Intercept"].reset_index(drop=True)
    out.attrs.update(attrs)
    return out


def logistic_importance(
    X,
    y,
    weights=None,
    alpha: float = 0.05,
    include_intercept: bool = False,
    ridge_alpha: float = 1.0,
):
    """Which parameters move the harm rate: logistic GLM on z-scored parameters.

    ``X``: one row per observation, one column per parameter (numeric, bool, or categorical --
    categorical columns become ``name=level`` dummies against the first level). ``y``: either
    per-response harmful 0/1 (``weights`` None), or per-configuration harm *proportions* with
    ``weights`` = number of responses behind each proportion (passed to statsmodels as
    ``freq_weights``, which gives the same estimates and standard errors as a binomial with that
    many trials). Rows with a NaN anywhere (or weight <= 0) are dropped.

    Every remaining column is standardised (mean 0, sample SD 1, dummies included), so ``coef``
    is the change in log-odds of harm per one SD of the parameter and magnitudes are comparable
    across parameters. CIs are Wald (1 - alpha); ``p`` is the Wald test.

    Returns a tidy DataFrame with columns ``term, coef, ci_low, ci_high, p, status``. Status:
    ``"ok"``; ``"dropped: constant"`` (column with one value: not estimable, all NaN);
    ``"separation: ridge estimate, no CI"`` -- perfect or quasi-perfect separation (statsmodels'
    PerfectSeparationWarning, non-convergence, or an absurd |coef| > 15 or SE > 50 on the
    standardised scale): ``coef`` is then an L2-penalised fit (``ridge_alpha``) and
    ``ci_low/ci_high/p`` are NaN, because Wald inference is meaningless there;
    ``"collinear: not identifiable"`` -- the column is an exact linear combination of others
    (e.g. a duplicated parameter): all NaN, the other terms are still estimated;
    ``"outcome constant"`` / ``"too few observations"`` / ``"fit failed: ..."`` -- all NaN.
    It never raises on degenerate data (only on malformed input: length mismatch, y outside
    [0, 1]). ``out.attrs`` holds ``model``, ``n``, ``dropped_rows``, ``separation``,
    ``constant`` and ``collinear`` for reporting.
    """
    import statsmodels.api as sm

    Z, yv, wv, constant, dropped = _design(X, y, weights)
    if yv.size and ((yv < 0) | (yv > 1)).any():
        raise ValueError("y must be 0/1 outcomes or proportions in [0, 1]")
    terms = ["Intercept"] + list(Z.columns)
    attrs = {"model": "glm_binomial", "n": int(yv.size), "dropped_rows": dropped, "separation": False,
             "constant": list(constant), "alpha": float(alpha)}
    if yv.size <= len(terms):
        return _finish(_tidy(terms, status="too few observations"), constant, include_intercept, attrs)
    if np.all(yv == yv[0]) and yv[0] in (0.0, 1.0):
        return _finish(_tidy(terms, status="outcome constant"), constant, include_intercept, attrs)
    design = sm.add_constant(Z.to_numpy(), has_constant="add")
    collinear = _collinear(design)
    attrs["collinear"] = [terms[j] for j in collinear]
    model = sm.GLM(yv, design, family=sm.families.Binomial(), freq_weights=wv)
    separation = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = model.fit()
        flagged = any("separation" in type(w.message).__name__.lower() or "separation" in str(w.message).lower()
                      for w in caught)
        params, bse = np.asarray(res.params), np.asarray(res.bse)
        absurd = (not np.all(np.isfinite(bse))) or np.max(np.abs(params)) > 15 or np.max(bse) > 50
        converged = bool(getattr(res, "converged", True))
        separation = flagged or absurd or not converged
        if not separation:
            ci = np.asarray(res.conf_int(alpha=alpha))
            rows = _mark_collinear(_tidy(terms, params, ci, np.asarray(res.pvalues)), collinear)
            return _finish(rows, constant, include_intercept, attrs)
    except Exception as exc:  # PerfectSeparationError in older statsmodels, linear algebra failures
        if "separation" not in type(exc).__name__.lower() and "separation" not in str(exc).lower():
            return _finish(_tidy(terms, status=f"fit failed: {type(exc).__name__}"), constant,
                           include_intercept, attrs)
        separation = True
    attrs["separation"] = separation
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pen = np.full(len(terms), float(ridge_alpha) / max(1, yv.size))
            pen[0] = 1e-6  # (almost) unpenalised intercept, still finite under separation
            reg = model.fit_regularized(alpha=pen, L1_wt=0.0)
        rows = _mark_collinear(
            _tidy(terms, np.asarray(reg.params), status="separation: ridge estimate, no CI"), collinear)
    except Exception as exc:
        rows = _tidy(terms, status=f"separation: fit failed ({type(exc).__name__})")
    return _finish(rows, constant, include_intercept, attrs)


def linear_importance(
    X,
    y,
    weights=None,
    alpha: float = 0.05,
    include_intercept: bool = False,
    cov_type: str = "nonrobust",
):
    """Which parameters move relevance: OLS (WLS when ``weights``) on z-scored parameters.

    Same design handling as :func:`logistic_importance` (NaN rows dropped, categorical ->
    dummies, constant columns reported as ``"dropped: constant"``, exactly collinear ones as
    ``"collinear: not identifiable"``, every column standardised so
    ``coef`` is the change in mean relevance per one SD of the parameter). ``weights`` are WLS
    weights, e.g. the number of prompts behind each configuration's mean relevance.
    ``cov_type`` is passed to statsmodels (``"HC3"`` for heteroscedasticity-robust CIs).
    Same tidy DataFrame as :func:`logistic_importance`; ``"outcome constant"`` when y does not
    vary, ``"too few observations"`` when n <= number of terms (no residual df). Never raises on
    degenerate data.
    """
    import statsmodels.api as sm

    Z, yv, wv, constant, dropped = _design(X, y, weights)
    terms = ["Intercept"] + list(Z.columns)
    attrs = {"model": "ols" if wv is None else "wls", "n": int(yv.size), "dropped_rows": dropped,
             "separation": False, "constant": list(constant), "alpha": float(alpha)}
    if yv.size <= len(terms):
        return _finish(_tidy(terms, status="too few observations"), constant, include_intercept, attrs)
    if np.all(yv == yv[0]):
        return _finish(_tidy(terms, status="outcome constant"), constant, include_intercept, attrs)
    design = sm.add_constant(Z.to_numpy(), has_constant="add")
    collinear = _collinear(design)
    attrs["collinear"] = [terms[j] for j in collinear]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = sm.OLS(yv, design) if wv is None else sm.WLS(yv, design, weights=wv)
            res = model.fit(cov_type=cov_type)
            rows = _tidy(terms, np.asarray(res.params), np.asarray(res.conf_int(alpha=alpha)),
                         np.asarray(res.pvalues))
            rows = _mark_collinear(rows, collinear)
    except Exception as exc:
        rows = _tidy(terms, status=f"fit failed: {type(exc).__name__}")
    return _finish(rows, constant, include_intercept, attrs)
