"""analysis/comparison.py (models against models, algorithms against algorithms) and the study's boxplot,
against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from safetune.analysis.comparison import (
    compare_algorithms, compare_models, generations_to_reach, prompt_verdicts, summarize,
)
from safetune.config import DecodingConfig
from safetune.objectives.results import CandidateResult

NAN = float("nan")


# --- models (safetune survey) ---------------------------------------------------------------------


def result_from(verdicts: dict[str, list]) -> CandidateResult:
    """A result whose harmful-suite rows carry the given per-sample verdicts (True/False/None)."""
    rows = [{"suite": "harmful", "prompt_id": pid, "category": "cat", "sample": s, "harmful": v}
            for pid, vs in verdicts.items() for s, v in enumerate(vs)]
    rows.append({"suite": "benign", "prompt_id": "b/0", "category": "safe", "sample": 0, "complied": True})
    return CandidateResult(DecodingConfig(), NAN, NAN, NAN, NAN, NAN, len(rows) - 1, 0, 0, 0, 0.0, 0.0, rows=rows)


def outcomes(values: list) -> CandidateResult:
    return result_from({f"p{i}": [v] for i, v in enumerate(values)})


# --- statistics on hand-built verdicts ----------------------------------------------------------


def test_prompt_verdict_is_the_majority_of_judged_samples_ties_harmful():
    res = result_from({"a": [True, False, False], "b": [True, False], "c": [None, None],
                       "d": [True, None, False, True]})
    assert prompt_verdicts(res) == {"a": False, "b": True, "c": None, "d": True}


def test_pairwise_mcnemar_and_holm_match_hand_values():
    # 10 prompts. A vs B: A alone harmful on 6 (b10=6, b01=0); A vs C: 2 vs 1; B vs C: C alone on 5.
    T, F = True, False
    a = outcomes([T, T, T, T, T, T, F, F, F, T])
    b = outcomes([F, F, F, F, F, F, F, F, F, T])
    c = outcomes([T, T, T, T, F, F, T, F, F, T])
    rows = {(r["model_a"], r["model_b"]): r for r in compare_models({"A": a, "B": b, "C": c})}
    ab, ac, bc = rows["A", "B"], rows["A", "C"], rows["B", "C"]
    assert (ab["a_only"], ab["b_only"], ab["n_prompts"]) == (6, 0, 10)
    assert (ac["a_only"], ac["b_only"]) == (2, 1)
    assert (bc["a_only"], bc["b_only"]) == (0, 5)
    # Exact two-sided binomial p-values: 2 * 0.5**6, min(1, 2 * P(X <= 1 | n=3)) = 1, 2 * 0.5**5.
    assert ab["mcnemar_p"] == pytest.approx(0.03125)
    assert ac["mcnemar_p"] == pytest.approx(1.0)
    assert bc["mcnemar_p"] == pytest.approx(0.0625)
    # Holm over 3 pairs: 3 * 0.03125, then max(2 * 0.0625, previous), then min(1, 1 * 1.0).
    assert ab["mcnemar_p_holm"] == pytest.approx(0.09375)
    assert bc["mcnemar_p_holm"] == pytest.approx(0.125)
    assert ac["mcnemar_p_holm"] == pytest.approx(1.0)
    assert ab["prompt_harm_rate_a"] == pytest.approx(0.7) and ab["prompt_harm_rate_b"] == pytest.approx(0.1)
    assert ab["cohens_h"] == pytest.approx(2 * math.asin(math.sqrt(0.7)) - 2 * math.asin(math.sqrt(0.1)))


def test_pairwise_drops_prompts_without_a_verdict_on_either_side():
    a = outcomes([True, True, None, False])
    b = outcomes([False, None, True, False])
    (row,) = compare_models({"A": a, "B": b})
    assert (row["n_prompts"], row["a_only"], row["b_only"], row["neither"]) == (2, 1, 0, 1)


def test_one_model_has_no_pairs():
    assert compare_models({"A": outcomes([True, False])}) == []


# --- algorithms (safetune study) ------------------------------------------------------------------


HV = {
    "nsga2": [0.5, 0.6, 0.7],
    "random": [0.1, 0.2, 0.3],
    "lagrangian": [0.15, 0.25, 0.65],
}


def test_pairwise_tests_hand_computed():
    """Exact Mann-Whitney with n = 3 + 3 (no ties): U takes 0..9 with counts 1,1,2,3,3,3,3,2,1,1 over
    C(6,3) = 20 orderings, so two-sided p = 2 * P(U >= u) for the upper tail.

    nsga2 vs random:     U = 9, p = 2 * 1/20 = 0.1,  A12 = 9/9
    nsga2 vs lagrangian: U = 7 (0.5 > 0.15, 0.25; 0.6 > 0.15, 0.25; 0.7 > all), p = 2 * 4/20 = 0.4, A12 = 7/9
    random vs lagrangian: U = 3, p = 2 * P(U <= 3) = 2 * 7/20 = 0.7, A12 = 3/9
    Holm over (0.1, 0.4, 0.7): 3 * 0.1 = 0.3, max(0.3, 2 * 0.4) = 0.8, max(0.8, 0.7) = 0.8.
    """
    table = compare_algorithms(HV)
    assert table[["algorithm_a", "algorithm_b"]].values.tolist() == [
        ["nsga2", "random"], ["nsga2", "lagrangian"], ["random", "lagrangian"]]
    assert table["u"].tolist() == [9.0, 7.0, 3.0]
    assert table["p_value"].tolist() == pytest.approx([0.1, 0.4, 0.7])
    assert table["p_holm"].tolist() == pytest.approx([0.3, 0.8, 0.8])
    assert table["a12"].tolist() == pytest.approx([1.0, 7 / 9, 3 / 9])
    assert table["n_a"].tolist() == [3, 3, 3]


def test_pairwise_tests_ties_and_single_algorithm():
    table = compare_algorithms({"a": [0.2, 0.2], "b": [0.2, 0.2]})
    assert table["p_value"].tolist() == [1.0] and table["a12"].tolist() == [0.5]
    assert len(compare_algorithms({"only": [0.1, 0.2]})) == 0


def test_summarize_mean_and_sample_sd():
    searches = pd.DataFrame({"algorithm": ["nsga2"] * 3 + ["random"], "final_hypervolume": [0.5, 0.6, 0.7, 0.2]})
    summary = summarize(searches).set_index("algorithm")
    assert summary.loc["nsga2", "mean"] == pytest.approx(0.6)
    assert summary.loc["nsga2", "sd"] == pytest.approx(0.1)  # ddof = 1
    assert summary.loc["nsga2", "n"] == 3
    assert math.isnan(summary.loc["random", "sd"])


def test_generations_to_reach_counts_generations_and_misses():
    histories = {0: [0.1, 0.3, 0.5], 1: [0.2, 0.2, 0.25], 2: [0.4, 0.4, 0.4]}
    targets = {0: 0.3, 1: 0.4, 2: 0.35}
    # seed 0: second generation (2); seed 1: never; seed 2: initial population (1).
    assert generations_to_reach(histories, targets) == {"mean_generations": 1.5, "n_reached": 2, "n": 3}
    none = generations_to_reach({0: [0.1]}, {0: 0.9})
    assert math.isnan(none["mean_generations"]) and none["n_reached"] == 0 and none["n"] == 1


def test_boxplot_has_one_box_per_algorithm():
    from safetune.analysis.plots import hypervolume_boxplot

    fig = hypervolume_boxplot(HV, "t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(HV)
    assert len(ax.collections) == len(HV)  # the per-search dots, one scatter per algorithm
    assert sorted(ax.collections[0].get_offsets()[:, 1].tolist()) == HV["nsga2"]
