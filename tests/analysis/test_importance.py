"""safetune.analysis.importance on synthetic searches whose answer is known, from tables, results and MLflow runs."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from safetune.tracking import runs as tracking
from safetune.analysis import importance
from safetune.config import DecodingConfig
from safetune.errors import SafetuneError
from safetune.objectives.results import CandidateResult
from safetune.analysis.importance import (
    HARM,
    HARM_ADJUSTED,
    INCOHERENCE,
    RELEVANCE,
    TABLE_COLUMNS,
    ImportanceConfig,
    candidates_from_results,
    importance_for_results,
    importance_for_run,
    parameter_importance,
    plot_importance,
    repetition_summary,
)

N_RESPONSES = 60


def synthetic_results(n=48, seed=0, harm="repetition", prompts=("default", "policy")) -> list[CandidateResult]:
    """Candidates over the whole space whose harm depends on one thing only (the known answer).

    ``harm="repetition"``: logit(harm) = -1 + 3 (repetition_penalty - 1), nothing else.
    ``harm="incoherence"``: harm depends on incoherence only, and incoherence on repetition_penalty
    (the "it only works by degenerating" world). Relevance depends on temperature only.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        config = DecodingConfig(
            temperature=round(float(rng.uniform(0, 1.5)), 4), top_p=round(float(rng.uniform(0.5, 1)), 4),
            top_k=int(rng.integers(0, 100)), repetition_penalty=round(float(rng.uniform(0.7, 1.5)), 4),
            no_repeat_ngram_size=int(rng.integers(0, 6)), max_new_tokens=int(rng.integers(32, 64)),
            system_prompt=str(rng.choice(list(prompts))),
        )
        incoherence = float(np.clip(0.6 - 0.5 * (config.repetition_penalty - 0.7) + rng.normal(0, 0.08), 0, 1))
        if harm == "repetition":
            p = expit(-1 + 3 * (config.repetition_penalty - 1))
        else:
            p = expit(-1 - 6 * (incoherence - 0.4))
        k = int(rng.binomial(N_RESPONSES, p))
        out.append(CandidateResult(
            config=config, harm_rate=k / N_RESPONSES, harm_ci_low=0.0, harm_ci_high=1.0, harm_score=0.0,
            relevance=0.5 - 0.1 * config.temperature + float(rng.normal(0, 0.01)), n_responses=N_RESPONSES,
            n_unknown=0, new_tokens=100, prompt_tokens=100, truncated_rate=0.0, seconds=1.0,
            incoherence_rate=incoherence,
        ))
    return out


def row(table, target, term) -> dict:
    hit = table[(table["target"] == target) & (table["term"] == term)]
    assert len(hit) == 1, (target, term)
    return hit.iloc[0].to_dict()


def per_sd(results, name) -> float:
    return float(pd.Series([getattr(r.config, name) for r in results]).std(ddof=1))


def test_harm_driven_by_repetition_penalty_gets_the_significant_positive_coefficient():
    results = synthetic_results()
    table = importance_for_results(results)
    assert list(table.columns) == TABLE_COLUMNS
    rp = row(table, HARM, "repetition_penalty")
    assert rp["status"] == "ok" and rp["coefficient"] > 0 and rp["p_value"] < 1e-6
    # Known answer: the true slope per SD of the knob lies inside the 95% CI.
    assert rp["ci_low"] < 3 * per_sd(results, "repetition_penalty") < rp["ci_high"]
    harm = table[(table["target"] == HARM) & (table["term"] != "repetition_penalty")]
    assert (harm["coefficient"].abs() < rp["coefficient"] / 3).all()  # nothing else comes close
    # The null knobs do not move relevance; temperature does, with its known slope.
    temp = row(table, RELEVANCE, "temperature")
    assert temp["coefficient"] < 0 and temp["p_value"] < 1e-6
    assert temp["ci_low"] < -0.1 * per_sd(results, "temperature") < temp["ci_high"]
    assert row(table, RELEVANCE, "repetition_penalty")["p_value"] > 0.01
    assert row(table, HARM, "system_prompt=policy")["status"] == "ok"  # two prompts: one dummy
    assert set(table["target"]) == {HARM, HARM_ADJUSTED, RELEVANCE, INCOHERENCE}
    assert (table["n_candidates"] == len(results)).all()


def test_incoherence_model_separates_real_effect_from_degeneration():
    direct = importance_for_results(synthetic_results(harm="repetition"))
    # Lower penalty, more incoherence in both worlds (incoherence model beside the harm model).
    assert row(direct, INCOHERENCE, "repetition_penalty")["coefficient"] < 0
    assert row(direct, INCOHERENCE, "repetition_penalty")["p_value"] < 1e-3
    # Direct effect: repetition_penalty still matters with incoherence held fixed.
    adjusted = row(direct, HARM_ADJUSTED, "repetition_penalty")
    assert adjusted["coefficient"] > 0 and adjusted["p_value"] < 1e-3
    assert "persists beyond degeneration" in repetition_summary(direct)

    results = synthetic_results(harm="incoherence")
    mediated = importance_for_results(results)
    total = row(mediated, HARM, "repetition_penalty")
    assert total["coefficient"] > 0 and total["p_value"] < 1e-6  # "lower penalty helps" ...
    adjusted = row(mediated, HARM_ADJUSTED, "repetition_penalty")
    assert adjusted["p_value"] > 0.05  # ... only through degeneration
    inc = row(mediated, HARM_ADJUSTED, "incoherence_rate")
    sd_inc = float(np.std([r.incoherence_rate for r in results], ddof=1))
    assert inc["ci_low"] < -6 * sd_inc < inc["ci_high"]
    summary = repetition_summary(mediated)
    assert "Lower repetition_penalty went with lower harm" in summary
    assert "more incoherence" in summary and "through degenerate answers" in summary


def test_repeated_configurations_count_once():
    results = synthetic_results(n=30)
    replayed = results + results[:10]  # the same configs recur in a later generation (cache replays)
    assert len(candidates_from_results(replayed)) == 30
    pd.testing.assert_frame_equal(importance_for_results(replayed), importance_for_results(results))


def test_constant_system_prompt_is_reported_dropped():
    table = importance_for_results(synthetic_results(prompts=("policy",)))
    for target in (HARM, RELEVANCE):
        assert row(table, target, "system_prompt")["status"] == "dropped: constant"
    assert not table["term"].str.startswith("system_prompt=").any()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_candidates_give_status_rows(n):
    table = importance_for_results(synthetic_results(n=n))
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 4 and table["status"].str.startswith("too few candidates").all()
    assert table["coefficient"].isna().all()
    assert table.attrs["messages"][0].startswith(f"only {n} distinct")
    assert "could not be estimated" in repetition_summary(table)


def test_fewer_candidates_than_terms_is_a_status_not_a_crash():
    table = importance_for_results(synthetic_results(n=6))
    fitted = table[table["status"] != "dropped: constant"]
    assert set(fitted["status"]) == {"too few observations"}
    assert any("too few observations" in m for m in table.attrs["messages"])


def test_unknown_verdicts_reduce_the_binomial_weight():
    results = synthetic_results(n=30)
    frame = candidates_from_results(results)
    halved = frame.assign(n_unknown=N_RESPONSES // 2)  # same proportions, half the known verdicts
    full = row(parameter_importance(frame), HARM, "repetition_penalty")
    half = row(parameter_importance(halved), HARM, "repetition_penalty")
    assert half["coefficient"] == pytest.approx(full["coefficient"], rel=1e-6)
    width = lambda r: r["ci_high"] - r["ci_low"]  # noqa: E731
    assert width(half) == pytest.approx(width(full) * math.sqrt(2), rel=1e-4)


def test_bad_input_is_a_safetune_error():
    with pytest.raises(SafetuneError, match="alpha"):
        ImportanceConfig(alpha=1.5)
    with pytest.raises(SafetuneError, match="cov_type"):
        ImportanceConfig(cov_type="HC9")
    with pytest.raises(SafetuneError, match="lacks column"):
        parameter_importance(pd.DataFrame({"harm_rate": [0.1]}))


def test_forest_plot_has_one_panel_per_target():
    fig = plot_importance(importance_for_results(synthetic_results()))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [HARM, HARM_ADJUSTED, RELEVANCE, INCOHERENCE]
    empty = plot_importance(importance_for_results([]))  # only status rows: still a figure
    assert len(empty.axes) == 4


def log_search(results, generations=2) -> str:
    """A parent run with one child per result, logged by the real tracking.log_candidate."""
    mlflow.set_experiment("synthetic")  # not whatever experiment an earlier test left active
    with mlflow.start_run(run_name="synthetic") as parent:
        mlflow.set_tag("safetune.kind", "search")
        per_gen = math.ceil(len(results) / generations)
        for i, result in enumerate(results):
            tracking.log_candidate(result, i // per_gen, i % per_gen, 0.0, is_default=i == 0)
    return parent.info.run_id


def test_importance_from_mlflow_runs_equals_from_results(isolated):
    results = synthetic_results(n=24)
    parent = log_search(results + results[:4])  # four configurations recur in generation 1
    from_runs = importance.candidates_from_run(parent)
    assert len(from_runs) == 24
    expected = candidates_from_results(results)
    pd.testing.assert_frame_equal(from_runs.sort_values("digest").reset_index(drop=True),
                                  expected.sort_values("digest").reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(importance_for_run(parent), importance_for_results(results))


def test_unknown_run_id_is_one_line_error(isolated):
    with pytest.raises(SafetuneError, match="no MLflow run") as err:
        importance_for_run("0" * 32)
    assert "\n" not in str(err.value)
