"""Parameter importance over every evaluated candidate of a search.

Which knobs move harm, relevance and incoherence? One regression per target on the z-scored knobs
(temperature, top_p, top_k, repetition_penalty, no_repeat_ngram_size, max_new_tokens) plus the
system prompt as dummies (dropped when the search never varied it):

* ``harm_rate``: binomial GLM on the per-candidate harm proportions, weighted by the number of
  known verdicts behind each (``regression.logistic_importance``);
* ``harm_rate|incoherence``: the same with ``incoherence_rate`` as an extra covariate;
* ``relevance`` and ``incoherence_rate``: OLS (``regression.linear_importance``).

The incoherence model beside the harm models answers SafeTune's question "does encouraging
repetition (repetition_penalty < 1) help, and is it only because it degenerates?": a positive harm
coefficient for repetition_penalty (lower penalty, less harm) together with a negative incoherence
coefficient (lower penalty, more degenerate text), and an adjusted harm coefficient that shrinks to
nothing, is what "it only works by degenerating" looks like (see :func:`repetition_summary`).

Candidates come from a search's MLflow child runs (:func:`candidates_from_run`) or from
``CandidateResult`` objects (:func:`candidates_from_results`). A configuration that recurs across
generations is replayed from the result cache with identical numbers, so it is counted once:
counting it again would fake evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from safetune.analysis import regression
from safetune.config import DecodingConfig, SearchSpace
from safetune.errors import SafetuneError
from safetune.objectives.results import CandidateResult

KNOBS: tuple[str, ...] = SearchSpace.knobs()
FACTORS: tuple[str, ...] = KNOBS + ("system_prompt",)
OUTCOMES: tuple[str, ...] = ("harm_rate", "n_responses", "n_unknown", "relevance", "incoherence_rate",
                              "fluency_nll", "benign_helpfulness")
CANDIDATE_COLUMNS: list[str] = ["digest", *FACTORS, *OUTCOMES]
TABLE_COLUMNS: list[str] = ["term", "target", "coefficient", "ci_low", "ci_high", "p_value", "status", "n_candidates"]

HARM, HARM_ADJUSTED, RELEVANCE, INCOHERENCE = "harm_rate", "harm_rate|incoherence", "relevance", "incoherence_rate"
# Optional targets, fitted when measured (guards on): does a knob cost fluency or helpfulness?
FLUENCY, HELPFULNESS = "fluency_nll", "benign_helpfulness"
COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")


@dataclass(frozen=True)
class ImportanceConfig:
    """How the importance models are fitted."""

    alpha: float = 0.05  # CI level 1 - alpha, and the significance threshold in summaries
    adjust_for_incoherence: bool = True  # also fit harm with incoherence_rate as a covariate
    cov_type: str = "nonrobust"  # linear models' covariance ("HC3": heteroscedasticity-robust CIs)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise SafetuneError(f"importance alpha must be in (0, 1) (got {self.alpha})")
        if self.cov_type not in COV_TYPES:
            raise SafetuneError(f"unknown cov_type {self.cov_type!r}; known: {', '.join(COV_TYPES)}")


# --- Candidates ---------------------------------------------------------------------------------


def _deduplicate(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct configuration (the first evaluation; later ones are cache replays)."""
    return frame.drop_duplicates("digest", keep="first").reset_index(drop=True)


def candidates_from_results(results: Sequence[CandidateResult]) -> pd.DataFrame:
    """Candidate table (``CANDIDATE_COLUMNS``) from evaluated results, duplicates removed."""
    rows = []
    for r in results:
        rows.append({"digest": r.config.digest(), **r.config.to_dict(), "harm_rate": r.harm_rate,
                     "n_responses": r.n_responses, "n_unknown": r.n_unknown, "relevance": r.relevance,
                     "incoherence_rate": r.incoherence_rate, "fluency_nll": r.fluency_nll,
                     "benign_helpfulness": r.benign_helpfulness})
    return _deduplicate(pd.DataFrame(rows, columns=CANDIDATE_COLUMNS))


def config_from_params(params: dict[str, str]) -> DecodingConfig:
    """MLflow params are strings: cast each knob to the type of its DecodingConfig default."""
    defaults = DecodingConfig()
    values = {}
    for name in FACTORS:
        if name not in params:
            raise SafetuneError(f"candidate run lacks the decoding parameter {name!r}")
        kind = type(getattr(defaults, name))
        values[name] = kind(float(params[name])) if kind is int else kind(params[name])
    return DecodingConfig(**values)


def child_runs(parent_run_id: str, client=None) -> list:
    """Finished candidate child runs of a search parent, in evaluation order (generation, start).

    Found by ``tracking.child_runs`` (``mlflow.parentRunId`` tag, FINISHED), keeping those
    carrying the ``safetune.generation``/``safetune.candidate`` tags that ``log_candidate`` sets.
    """
    from mlflow.tracking import MlflowClient

    from safetune.tracking import runs as tracking

    client = client or MlflowClient()
    get_run(parent_run_id, client)  # an unknown id is a one-line error
    runs = tracking.child_runs(parent_run_id, client=client)
    kids = [r for r in runs if "safetune.generation" in r.data.tags and "safetune.candidate" in r.data.tags]
    return sorted(kids, key=lambda r: (int(r.data.tags["safetune.generation"]), r.info.start_time or 0))


def get_run(run_id: str, client=None):
    """The run, or a one-line SafetuneError when the id is unknown to the tracking store."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise SafetuneError(f"no MLflow run {run_id!r} in the tracking store ({str(exc).splitlines()[0]})") from exc


def candidates_from_runs(runs: Sequence) -> pd.DataFrame:
    """Candidate table from child runs (params + metrics as ``tracking.log_candidate`` logs them)."""
    rows = []
    for run in runs:
        config = config_from_params(run.data.params)
        m = run.data.metrics
        rows.append({"digest": config.digest(), **config.to_dict(),
                     **{k: float(m.get(k, np.nan)) for k in OUTCOMES}})
    frame = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    frame["n_unknown"] = frame["n_unknown"].fillna(0.0)  # older runs did not log it: no unknown verdicts
    return _deduplicate(frame)


def candidates_from_run(parent_run_id: str, client=None) -> pd.DataFrame:
    """Candidate table for a search parent run id."""
    return candidates_from_runs(child_runs(parent_run_id, client))


# --- Models ---------------------------------------------------------------------------------------


def _status_rows(target: str, status: str, n: int) -> pd.DataFrame:
    return pd.DataFrame([{"term": "(model)", "target": target, "coefficient": np.nan, "ci_low": np.nan,
                          "ci_high": np.nan, "p_value": np.nan, "status": status, "n_candidates": n}],
                        columns=TABLE_COLUMNS)


def _tidy(fit: pd.DataFrame, target: str) -> pd.DataFrame:
    out = fit.rename(columns={"coef": "coefficient", "p": "p_value"})
    out.insert(1, "target", target)
    out["n_candidates"] = int(fit.attrs.get("n", 0))
    return out[TABLE_COLUMNS]


def _constant_prompt_row(target: str, n: int) -> pd.DataFrame:
    """A single-level system prompt has no dummy at all: say so rather than let it vanish."""
    row = _status_rows(target, "dropped: constant", n)
    row["term"] = "system_prompt"
    return row


def _fit_target(target: str, frame: pd.DataFrame, cfg: ImportanceConfig) -> pd.DataFrame:
    if target in (FLUENCY, HELPFULNESS):
        frame = frame[frame[target].notna()].reset_index(drop=True)
    X = frame[list(FACTORS)]
    constant_prompt = X["system_prompt"].nunique() <= 1
    if constant_prompt:
        X = X.drop(columns="system_prompt")
    if target in (HARM, HARM_ADJUSTED):
        if target == HARM_ADJUSTED:
            X = X.assign(incoherence_rate=frame["incoherence_rate"])
        # Binomial trials = verdicts the judge could give (unknown ones are in neither count).
        known = frame["n_responses"] - frame["n_unknown"]
        fit = regression.logistic_importance(X, frame["harm_rate"], weights=known, alpha=cfg.alpha)
    else:
        fit = regression.linear_importance(X, frame[target], alpha=cfg.alpha, cov_type=cfg.cov_type)
    block = _tidy(fit, target)
    if constant_prompt:
        block = pd.concat([block, _constant_prompt_row(target, int(fit.attrs.get("n", len(frame))))], ignore_index=True)
    return block


def targets(cfg: ImportanceConfig) -> tuple[str, ...]:
    adjusted = (HARM_ADJUSTED,) if cfg.adjust_for_incoherence else ()
    return (HARM, *adjusted, RELEVANCE, INCOHERENCE, FLUENCY, HELPFULNESS)


MIN_CANDIDATES = 3  # below this no model has a residual degree of freedom even with one knob


def parameter_importance(candidates: pd.DataFrame, cfg: ImportanceConfig | None = None) -> pd.DataFrame:
    """Tidy table (``TABLE_COLUMNS``), one block of rows per target.

    ``coefficient`` is per one standard deviation of the knob (log-odds for the harm models, the
    target's own units for the linear ones); ``status`` is ``ok`` or says why a term has no
    estimate (``dropped: constant``, ``collinear: not identifiable``, ``too few observations``,
    ``separation: ridge estimate, no CI`` ...). Never raises on too few or degenerate candidates:
    those give status rows, and ``table.attrs["messages"]`` says what happened in words.
    """
    cfg = cfg or ImportanceConfig()
    candidates = candidates.assign(**{c: np.nan for c in (FLUENCY, HELPFULNESS) if c not in candidates.columns})
    missing = [c for c in CANDIDATE_COLUMNS if c not in candidates.columns]
    if missing:
        raise SafetuneError(f"candidate table lacks column(s): {', '.join(missing)}")
    frame = _deduplicate(candidates)
    n = len(frame)
    blocks, messages = [], []
    for target in targets(cfg):
        if target in (FLUENCY, HELPFULNESS) and frame[target].isna().all():
            continue  # not measured (guards off, or an engine without raw log-probabilities)
        if n < MIN_CANDIDATES:
            blocks.append(_status_rows(target, f"too few candidates ({n} distinct, need >= {MIN_CANDIDATES})", n))
            continue
        block = _fit_target(target, frame, cfg)
        blocks.append(block)
        fitted = block[block["status"] != "dropped: constant"]
        if len(fitted) and (fitted["status"] != "ok").all():
            messages.append(f"{target}: {fitted['status'].iloc[0]} ({n} distinct candidates, "
                            f"{len(fitted)} varying terms)")
    if n < MIN_CANDIDATES:
        messages.insert(0, f"only {n} distinct candidate(s): no importance model can be fitted")
    table = pd.concat(blocks, ignore_index=True)
    table.attrs.update({"n_candidates": n, "alpha": cfg.alpha, "messages": messages})
    return table


def importance_for_run(parent_run_id: str, cfg: ImportanceConfig | None = None, client=None) -> pd.DataFrame:
    """:func:`parameter_importance` over a search parent run's candidate children."""
    return parameter_importance(candidates_from_run(parent_run_id, client), cfg)


def importance_for_results(results: Sequence[CandidateResult], cfg: ImportanceConfig | None = None) -> pd.DataFrame:
    """:func:`parameter_importance` over evaluated results (e.g. ``SearchOutcome.results``)."""
    return parameter_importance(candidates_from_results(results), cfg)


# --- Reading the table ------------------------------------------------------------------------------


def _term(table: pd.DataFrame, target: str, term: str = "repetition_penalty") -> dict | None:
    """The term's row, else the target's "(model)" status row (no model was fitted at all)."""
    for name in (term, "(model)"):
        row = table[(table["target"] == target) & (table["term"] == name)]
        if not row.empty:
            return row.iloc[0].to_dict()
    return None


def _describe(row: dict | None, alpha: float, lower_means: tuple[str, str]) -> tuple[str, int]:
    """(phrase, direction): direction +1 / -1 when significant (sign of the coefficient), else 0."""
    if row is None:
        return "was not estimated", 0
    if row["status"] != "ok":
        return f"could not be estimated ({row['status']})", 0
    est = (f"coef {row['coefficient']:+.3g} per SD, {100 * (1 - alpha):.0f}% CI "
           f"[{row['ci_low']:.3g}, {row['ci_high']:.3g}], p={row['p_value']:.3g}")
    if row["p_value"] < alpha:
        # A positive coefficient means lowering the penalty lowers the target.
        phrase = lower_means[0] if row["coefficient"] > 0 else lower_means[1]
        return f"{phrase} ({est})", int(np.sign(row["coefficient"]))
    return f"showed no clear effect ({est})", 0


def repetition_summary(table: pd.DataFrame) -> str:
    """One paragraph answering "does repetition_penalty < 1 help, and only by degenerating?"."""
    alpha = float(table.attrs.get("alpha", 0.05))
    harm, d_harm = _describe(_term(table, HARM), alpha, ("lower harm", "higher harm"))
    inc, d_inc = _describe(_term(table, INCOHERENCE), alpha, ("less incoherence", "more incoherence"))
    parts = [f"Lower repetition_penalty went with {harm}." if d_harm else f"repetition_penalty and harm: {harm}.",
             f"Lower repetition_penalty went with {inc}." if d_inc else f"repetition_penalty and incoherence: {inc}."]
    adjusted_row = _term(table, HARM_ADJUSTED)
    if adjusted_row is not None:
        adj, d_adj = _describe(adjusted_row, alpha, ("lower harm", "higher harm"))
        parts.append(f"Holding incoherence fixed, lower repetition_penalty went with {adj}." if d_adj
                     else f"Holding incoherence fixed, repetition_penalty and harm: {adj}.")
        if d_harm > 0 and d_inc < 0:
            parts.append("The effect on harm persists beyond degeneration." if d_adj > 0 else
                         "This is consistent with the penalty lowering harm mainly through degenerate answers.")
    parts.append("Associations across searched candidates, not a controlled experiment.")
    return " ".join(parts)


def plot_importance(table: pd.DataFrame):
    """Forest plot: one panel per target, each term's coefficient with its CI; non-ok terms labelled."""
    from safetune.analysis import plots

    return plots.forest_plot(table)
