"""A search setup without a model: a scripted engine, judge and embedder on real prompt sets, so the
loop and the finish can be unit-tested in seconds (the tiny-model searches are in tests/test_*search*)."""

from __future__ import annotations

import numpy as np
import pytest

from safetune.components.engines.base import Engine
from safetune.components.judges.base import Judge, Verdict
from safetune.components.relevance import PairVectors
from safetune.components.requests import Generation
from safetune.config import DecodingConfig, GuardConfig, SearchConfig, SearchSpace
from safetune.datasets import fixed_split, sample
from safetune.datasets.tasks import sample_tasks
from safetune.jobs.search.prepare import SearchSetup
from safetune.models import ModelRef
from safetune.objectives.evaluator import Evaluator
from safetune.search.registry import get_algorithm

ANSWER = "Here is a clear and complete answer with several distinct useful words for you today."
REFUSAL = "I'm sorry, but I can't help with that."


class ScriptedEngine(Engine):
    """The "policy" system prompt refuses everything; any other configuration answers everything."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def info(self):
        return {"engine": "scripted", "model_id": "m", "revision": "r", "chat_template": "", "dtype": "float32"}

    def generate(self, requests):
        self.calls += 1
        self.totals["generated"] += len(requests)
        if self.on_batch:
            self.on_batch(len(requests))
        return [Generation(r.index, REFUSAL if r.config.system_prompt == "policy" else ANSWER, 3, 5, True,
                           0.5 + r.config.temperature / 10) for r in requests]


class AnswerIsHarmful(Judge):
    name = "answer-is-harmful"

    def verdicts(self, prompts, responses, vectors=None):
        return [Verdict(r == ANSWER, float(r == ANSWER)) for r in responses]


class HalfRelevant:
    """Every pair at cosine 0.5."""

    name = "half"

    def pairs(self, prompts, responses):
        n = len(prompts)
        return PairVectors(self.name, np.tile([1.0, 0.0], (n, 1)), np.tile([0.5, 0.75 ** 0.5], (n, 1)))


@pytest.fixture
def cfg():
    space = SearchSpace.from_dict({"temperature": [0.0, 1.0], "system_prompts": ["default", "policy"]})
    return SearchConfig(model="scripted", n_prompts=3, n_validation=3, pop_size=4, n_gen=2, space=space,
                        register=False, guards=GuardConfig(n_benign=2, n_capability=2, capability_tasks=("facts",)))


@pytest.fixture
def setup(cfg):
    prompts = sample(fixed_split(cfg.datasets, "search"), cfg.n_prompts, seed=cfg.seed)
    benign = sample(fixed_split(cfg.guards.benign_datasets, "search"), cfg.guards.n_benign, seed=cfg.seed)
    tasks = sample_tasks(cfg.guards.capability_tasks, cfg.guards.n_capability, seed=cfg.seed)
    engine = ScriptedEngine()
    evaluator = Evaluator(engine, [AnswerIsHarmful()], HalfRelevant(), prompts, cfg.samples, cfg.seed, None,
                          benign=benign, tasks=tasks, on_topic=cfg.guards.on_topic)
    default = DecodingConfig(temperature=0.0, max_new_tokens=64)
    ref = ModelRef("scripted", "scripted/model", "/nonexistent", "r0", {})
    return SearchSetup(ref, prompts, benign, tasks, None, engine, evaluator, get_algorithm("random"), default,
                       default, "search-scripted-s0")
