"""The evaluator's aggregation with a scripted engine and judges: every metric against hand counts."""

import numpy as np
import pytest

from safetune.cache import Cache
from safetune.components.engines import Engine
from safetune.components.generation import Generation
from safetune.components.judges.base import Judge, Verdict
from safetune.components.relevance import PairVectors
from safetune.config import DecodingConfig
from safetune.datasets import PromptItem, PromptSet
from safetune.datasets.tasks import TaskItem, extract_answer, is_correct
from safetune.objectives.evaluator import Evaluator
from safetune.objectives.guards import is_compliant, is_incoherent

HARMFUL = PromptSet("h", tuple(PromptItem(f"h/{i}", f"harmful request {i}", "cat", "h", True) for i in range(4)), "")
BENIGN = PromptSet("b", tuple(PromptItem(f"b/{i}", f"benign question {i}", "safe", "b", False) for i in range(2)), "")
TASKS = (TaskItem("arc-easy/1", "arc-easy", "Q1 options", "B"), TaskItem("gsm8k/1", "gsm8k", "Q2", "18"))
ANSWER = "Here is a clear and complete answer with several distinct useful words for you today."


class ScriptedEngine(Engine):
    """Responses chosen by (prompt, sample); counts calls."""

    def __init__(self, script):
        super().__init__()
        self.script, self.calls = script, 0

    def info(self):
        return {"engine": "scripted"}

    def generate(self, requests):
        self.calls += 1
        # nll: a made-up fluency, longer prompts less fluent, so fluency_nll has a value to check.
        return [Generation(r.index, self.script(r.prompt, r.sample), 3, 5, True, 0.5 + len(r.prompt) / 100)
                for r in requests]


class ScriptedJudge(Judge):
    def __init__(self, name, rule):
        self.name, self.rule = name, rule

    def verdicts(self, prompts, responses, vectors=None):
        return [Verdict(harmful=self.rule(p, r), score=1.0 if self.rule(p, r) else 0.0) for p, r in zip(prompts, responses)]


class ConstRelevance:
    """Every pair at cosine 0.5: prompts embed to (1, 0), responses to (0.5, sqrt(0.75))."""

    name = "const"

    def pairs(self, prompts, responses):
        n = len(prompts)
        return PairVectors(self.name, np.tile([1.0, 0.0], (n, 1)), np.tile([0.5, 0.75 ** 0.5], (n, 1)))


def script(prompt, sample):
    if prompt.startswith("harmful request 0"):
        return ANSWER  # harmful under the scripted judge
    if prompt.startswith("harmful request 1"):
        return ANSWER if sample == 0 else "I'm sorry, I can't help with that."  # flips across samples
    if prompt.startswith("harmful request"):
        return "I'm sorry, I can't help with that."
    if prompt == "benign question 0":
        return ANSWER
    if prompt == "benign question 1":
        return "word word word word word word word word word word word word word word"  # degenerate
    if prompt == "Q1 options":
        return "The answer is B."
    return "It is 20."  # wrong GSM8K answer


def harmful_rule(prompt, response):
    if prompt.endswith("3"):
        return None  # the judge cannot decide: unknown, never counted
    return response == ANSWER


def make(samples=2, judges=None, cache=None):
    judges = judges or [ScriptedJudge("primary", harmful_rule)]
    engine = ScriptedEngine(script)
    return Evaluator(engine, judges, ConstRelevance(), HARMFUL, samples=samples, cache=cache,
                     benign=BENIGN, tasks=TASKS), engine


def test_metrics_match_hand_counts():
    evaluator, engine = make()
    (res,) = evaluator.evaluate([DecodingConfig()])
    assert engine.calls == 1  # one generation call for the whole population
    # 4 prompts x 2 samples = 8 responses; prompt 3's 2 are unknown -> 6 known, 3 harmful (p0 x2, p1 s0)
    assert res.n_responses == 8 and res.n_unknown == 2
    assert res.harm_rate == pytest.approx(3 / 6)
    assert res.harm_ci_low < 0.5 < res.harm_ci_high
    assert res.flip_rate == pytest.approx(1 / 3)  # prompts 0, 1, 2 known; only 1 flips
    assert res.benign_compliance == pytest.approx(0.5)
    # incoherent: the degenerate benign answer, out of 8 harmful + 2 benign responses
    assert res.incoherence_rate == pytest.approx(1 / 10)
    assert res.capability == pytest.approx(0.5)
    assert res.extra["capability.arc-easy"] == 1.0 and res.extra["capability.gsm8k"] == 0.0
    assert res.relevance == pytest.approx(0.5)
    assert {r["suite"] for r in res.rows} == {"harmful", "benign", "capability"}


def test_second_judge_rate_and_agreement():
    always = ScriptedJudge("always", lambda p, r: True)
    evaluator, _ = make(judges=[ScriptedJudge("primary", harmful_rule), always])
    (res,) = evaluator.evaluate([DecodingConfig()])
    assert res.extra["harm_rate.always"] == 1.0
    assert res.extra["agreement.primary.always"] == pytest.approx(3 / 6)
    # kappa is undefined when one rater never varies and the other does: (po - pe) / (1 - pe) = 0
    assert res.extra["kappa.primary.always"] == pytest.approx(0.0)


def test_result_cache_and_duplicates(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    evaluator, engine = make(cache=cache)
    a, b = DecodingConfig(), DecodingConfig(temperature=0.5)
    first = evaluator.evaluate([a, b, a])
    assert engine.calls == 1 and evaluator.stats["candidates_evaluated"] == 2
    assert first[0].to_dict() == first[2].to_dict()
    again, engine2 = make(cache=cache)
    second = again.evaluate([b, a])
    assert engine2.calls == 0 and [r.to_dict() for r in second] == [first[1].to_dict(), first[0].to_dict()]


def test_text_guards():
    assert is_incoherent("") and is_incoherent("the the the the the the the the the the the the the the")
    assert not is_incoherent(ANSWER) and is_compliant(ANSWER)
    assert not is_compliant("I'm sorry, but I can't help with that.")


@pytest.mark.parametrize("task, response, expected", [
    ("arc-easy", "B", "B"), ("arc-easy", "The answer is (C).", "C"), ("arc-easy", "none", None),
    ("arc-easy", "A good choice here is D.", "D"), ("arc-easy", "A. Sunlight", "A"), ("arc-easy", "answer: e", "E"),
    ("gsm8k", "3 + 4 = 7, so 1,234 dollars.", "1234"), ("gsm8k", "no numbers", None),
])
def test_answer_extraction(task, response, expected):
    assert extract_answer(task, response) == expected


def test_gsm8k_numeric_equality():
    item = TaskItem("g", "gsm8k", "q", "18")
    assert is_correct(item, "The total is 18.0") and not is_correct(item, "It is 180")
