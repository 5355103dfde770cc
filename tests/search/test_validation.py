"""Champion selection on prompts the search never saw."""

from safetune.config import DecodingConfig
from safetune.datasets import load_prompt_sets, sample, split
from safetune.objectives.evaluator import CandidateResult
from safetune.search.validation import select, validation_slice


def result(harm: float, relevance: float, ci_high: float | None = None) -> CandidateResult:
    return CandidateResult(DecodingConfig(), harm, max(0.0, harm - 0.1), ci_high if ci_high is not None else harm + 0.1,
                           harm, relevance, 10, 0, 100, 100, 0.0, 1.0)


def test_validation_slice_never_reuses_search_prompts():
    pool = split(load_prompt_sets(("harmbench-standard",)), "search")
    used = sample(pool, 12, seed=0)
    val = validation_slice(pool, used, 12, seed=0)
    assert len(val) == 12 and not {it.id for it in val} & {it.id for it in used}
    assert {it.id for it in val} <= {it.id for it in pool}
    assert validation_slice(pool, pool, 12, seed=0) is None  # nothing left
    assert validation_slice(pool, used, 0, seed=0) is None  # switched off


def test_select_uses_validation_measurements_and_the_budget():
    keys = ["a", "b", "c"]
    search = [result(0.0, 0.2), result(0.3, 0.6), result(0.6, 0.9)]
    # On fresh prompts "a" is no longer the safest and "b" is over the budget.
    validation = [result(0.4, 0.25), result(0.5, 0.55), result(0.1, 0.7)]
    chosen = select(keys, search, validation, harm_budget=0.3)
    assert chosen.aliases == {"champion": "c", "safest": "c", "most-relevant": "c"}
    assert chosen.split == "validation" and "<= 0.3" in chosen.rule and "validation" in chosen.rule
    on_search = select(keys, search, None, harm_budget=0.3)
    assert on_search.aliases["champion"] == "b" and on_search.split == "search"
    # No budget: the most relevant within the safest's Wilson upper bound.
    assert select(keys, search, [result(0.2, 0.3, ci_high=0.45), result(0.4, 0.8), result(0.5, 0.9)],
                  None).aliases["champion"] == "b"
