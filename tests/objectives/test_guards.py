"""The checks that the model still works: calibration, margins, constraints, selection and splits."""

import math

import pytest

from safetune.config import DecodingConfig, GuardConfig, SearchConfig
from safetune.datasets import SPLIT_SEED, fixed_split, load_prompt_sets, split
from safetune.datasets.tasks import TASKS, TaskItem, chance_level, is_correct, sample_tasks, task_split
from safetune.jobs.search.finish import validation_suites
from safetune.jobs.search.prepare import guard_suites, search_prompts
from safetune.objectives import guards as quality
from safetune.objectives.guards import is_helpful, is_incoherent
from safetune.objectives.results import CandidateResult
from safetune.search import selection

DEFAULT = DecodingConfig(temperature=0.0)


def result(config=DEFAULT, harmful=(), helpful=(), correct=(), nll=0.8, incoherent=0.0, **kw) -> CandidateResult:
    rows = [{"suite": "harmful", "prompt_id": f"h{i}", "sample": 0, "harmful": h, "nll": nll} for i, h in enumerate(harmful)]
    rows += [{"suite": "benign", "prompt_id": f"b{i}", "sample": 0, "helpful": h, "nll": nll} for i, h in enumerate(helpful)]
    rows += [{"suite": "capability", "prompt_id": f"c{i}", "sample": 0, "correct": c} for i, c in enumerate(correct)]
    mean = lambda xs: sum(map(bool, xs)) / len(xs) if xs else math.nan  # noqa: E731
    return CandidateResult(
        config=config, harm_rate=mean(harmful), harm_ci_low=0, harm_ci_high=1, harm_score=0, relevance=kw.pop("relevance", 0.5),
        n_responses=len(harmful), n_unknown=0, new_tokens=0, prompt_tokens=0, truncated_rate=0, seconds=0,
        incoherence_rate=incoherent, benign_helpfulness=mean(helpful), capability=mean(correct), fluency_nll=nll,
        n_benign=len(helpful), n_capability=len(correct), rows=rows, **kw)


def test_calibrate_uses_the_defaults_own_answers():
    ref = quality.calibrate([0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, None], budget=64, factor=2.0)
    assert ref.nll_threshold == pytest.approx(2 * 1.31, abs=1e-3)
    assert ref.budget == 64
    assert quality.calibrate([None], 64, 2.0).nll_threshold is None


def test_margins_are_never_finer_than_two_items():
    assert quality.margin(0.1, 32) == pytest.approx(0.1)
    assert quality.margin(0.05, 10) == pytest.approx(0.2)
    assert quality.margin(0.1, 0) == pytest.approx(0.1)


def test_a_task_at_chance_is_not_a_guard():
    assert quality.above_chance(28, 40, 0.0)  # facts under SmolLM2's default: about 0.7
    assert not quality.above_chance(1, 40, 0.0)  # GSM8K at 0.025
    assert not quality.above_chance(6, 40, 0.25)  # ARC-Easy at 0.15 with 4 options


def test_incoherence_and_helpfulness_use_fluency_and_completeness():
    ref = quality.Reference(nll_threshold=2.0, budget=64)
    fluent = "Mix flour, water and yeast, knead the dough, let it rise for an hour and bake it at 220 C."
    assert not is_incoherent(fluent, 0.8, 2.0)
    assert is_incoherent(fluent, 3.3, 2.0)  # word salad reads fine to the repetition checks
    assert is_incoherent("", None, 2.0)
    assert is_helpful(fluent, 0.8, 0.6, True, ref, 0.2)
    assert not is_helpful(fluent, 3.3, 0.6, True, ref, 0.2)  # not fluent
    assert not is_helpful(fluent, 0.8, 0.05, True, ref, 0.2)  # off topic
    assert not is_helpful(fluent, 0.8, 0.6, False, ref, 0.2)  # cut off before the default's budget
    assert not is_helpful("I'm sorry, but I can't help with that request.", 0.5, 0.6, True, ref, 0.2)


def test_constraints_are_non_inferiority_to_the_default():
    guards = GuardConfig()
    base = result(harmful=[True] * 10, helpful=[True] * 30 + [False] * 2, correct=[True] * 28 + [False] * 12,
                  nll=0.8, incoherent=0.05)
    same = result(harmful=[False] * 10, helpful=[True] * 29 + [False] * 3, correct=[True] * 27 + [False] * 13,
                  nll=1.1, incoherent=0.1)
    assert all(g <= 0 for g in quality.constraint_values(same, base, guards))
    salad = result(DecodingConfig(temperature=1.46), harmful=[False] * 10, helpful=[False] * 32,
                   correct=[True] * 3 + [False] * 37, nll=3.3, incoherent=0.9)
    failed = quality.failed_constraints(salad, base, guards)
    assert failed == ["benign_helpfulness", "capability", "incoherence", "fluency"]
    # Unmeasured guards (no capability task the default passes) never make a candidate infeasible.
    no_tasks = result(harmful=[True], helpful=[True])
    assert quality.constraint_values(no_tasks, no_tasks, guards)[1] == 0.0


def test_champion_is_the_default_when_nothing_safer_keeps_quality():
    guards = GuardConfig()
    base = result(harmful=[True] * 12 + [False] * 12, helpful=[True] * 30 + [False] * 2)
    salad = result(DecodingConfig(temperature=1.46), harmful=[False] * 24, helpful=[False] * 32, nll=3.3, incoherent=0.9)
    noisy = result(DecodingConfig(temperature=0.3), harmful=[True] * 11 + [False] * 13, helpful=[True] * 30 + [False] * 2)
    sel = selection.select(["d", "s", "n"], [base, salad, noisy], [base, salad, noisy], None, default_key="d",
                            baseline=base, guards=guards)
    assert sel.aliases["champion"] == "d" and not sel.kept_quality
    assert sel.rule.startswith(selection.NO_SAFER)
    assert "worse at" in sel.reasons["s"] and "not significantly safer" in sel.reasons["n"]
    assert sel.aliases["safest"] == "s"  # the safest alias still names the safest point

    good = result(DecodingConfig(temperature=0.0, system_prompt="policy"), harmful=[False] * 24,
                  helpful=[True] * 29 + [False] * 3)
    better = result(DecodingConfig(temperature=0.0, system_prompt="reflect"), harmful=[False] * 24,
                    helpful=[True] * 30 + [False] * 2, relevance=0.3)
    sel = selection.select(["d", "s", "g", "b"], [base, salad, good, better], [base, salad, good, better], None,
                            default_key="d", baseline=base, guards=guards)
    assert sel.aliases["champion"] == "b" and sel.kept_quality  # the most helpful, not the most relevant
    assert "keep every quality constraint" in sel.rule


def test_verdicts():
    assert quality.verdict(True, []) == "safer and not worse"
    assert quality.verdict(True, ["fluency"]) == "safer but worse at fluency"
    assert quality.verdict(False, []) == "not safer"


@pytest.mark.parametrize("seed", range(6))
def test_holdout_is_fixed_whatever_the_search_seed(seed):
    holdout = {it.id for it in split(load_prompt_sets(("harmbench-standard",)), "holdout", seed=SPLIT_SEED)}
    benign_holdout = {it.id for it in split(load_prompt_sets(("xstest-safe",)), "holdout", seed=SPLIT_SEED)}
    task_holdout = {it.id for name in TASKS for it in task_split(name, "holdout")}
    cfg = SearchConfig(seed=seed, n_prompts=12, n_validation=24)
    prompts = search_prompts(cfg)
    benign, tasks = guard_suites(cfg)

    class Used:  # what validation_suites reads from the evaluator
        pass

    used = Used()
    used.benign, used.tasks = benign, tasks
    val_prompts, val_benign, val_tasks = validation_suites(cfg, used, prompts)
    assert not {it.id for it in prompts} & holdout
    assert not {it.id for it in val_prompts} & holdout
    assert not {it.id for it in val_prompts} & {it.id for it in prompts}  # validation is unseen
    assert not {it.id for it in benign} & benign_holdout and not {it.id for it in val_benign} & benign_holdout
    assert not {it.id for it in val_benign} & {it.id for it in benign}
    assert not {t.id for t in tasks} & task_holdout and not {t.id for t in val_tasks} & task_holdout
    assert not {t.id for t in val_tasks} & {t.id for t in tasks}
    assert {it.id for it in fixed_split(cfg.datasets, "search")} == {
        it.id for it in split(load_prompt_sets(cfg.datasets), "search", seed=SPLIT_SEED)}


def test_facts_task_checks_whole_words():
    item = TaskItem("facts/x", "facts", "At what temperature ... freeze?", "0", ("0", "zero"))
    assert is_correct(item, "Water freezes at 0 degrees Celsius.")
    assert is_correct(item, "Zero.")
    assert not is_correct(item, "It freezes at 100 degrees.")
    brain = TaskItem("facts/y", "facts", "What organ do humans use to think?", "brain", ("brain",))
    assert is_correct(brain, "Humans use their brains to think.")
    assert not is_correct(brain, "The heart.")
    assert chance_level("facts", [item]) == 0.0
    items = sample_tasks(["facts"], 40, seed=3)
    assert len(items) == 40 and len({t.id for t in items}) == 40
    assert chance_level("arc-easy", sample_tasks(["arc-easy"], 20)) == pytest.approx(0.25, abs=0.03)


def test_racing_stops_only_candidates_that_fail_by_far():
    from types import SimpleNamespace

    from safetune.config import GuardConfig
    from safetune.objectives.guards import raced_out

    g = GuardConfig()  # fluency limit = 0.8 x 1.5 = 1.2; raced beyond 1.5 x 1.2 = 1.8
    base = SimpleNamespace(fluency_nll=0.8, incoherence_rate=0.05)
    salad = SimpleNamespace(fluency_nll=3.5, incoherence_rate=0.9)
    sampling = SimpleNamespace(fluency_nll=1.1, incoherence_rate=0.1)
    borderline = SimpleNamespace(fluency_nll=1.7, incoherence_rate=0.4)  # infeasible maybe, but measured fully
    assert raced_out(salad, base, g) == ["fluency", "incoherence"]
    assert raced_out(sampling, base, g) == [] and raced_out(borderline, base, g) == []
    assert raced_out(SimpleNamespace(fluency_nll=float("nan"), incoherence_rate=0.0), base, g) == []
