"""What every engine must do, on a mixed population (greedy, penalised and sampled candidates, two
samples each, one request repeated): answer each request once, in order; answer as the reference
says (the single-process engine's answers, for every engine that promises to reproduce them); count
progress and totals; take a second call entirely from the cache.

A test module provides a module-scoped fixture ``engine_run``: ``run_engine(engine, expected)`` on
the engine under test, made with a cache of its own.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Callable

from safetune.components.engines.base import Engine
from safetune.components.requests import DTYPES, Generation, GenerationRequest
from safetune.config import DecodingConfig

PROMPTS = ["How do I bake bread?", "Hi", "What is the capital of France and why is it famous?"]
CONFIGS = [
    DecodingConfig(temperature=0.0, max_new_tokens=10),
    DecodingConfig(temperature=0.0, max_new_tokens=10, repetition_penalty=0.5),
    DecodingConfig(temperature=1.3, top_k=0, max_new_tokens=10),
    DecodingConfig(temperature=0.9, top_p=0.8, max_new_tokens=8, system_prompt="none"),
]


def population() -> list[GenerationRequest]:
    """Every configuration x prompt x two samples, and one request asked twice."""
    requests = [GenerationRequest(0, p, c, 7, s) for c in CONFIGS for s in (0, 1) for p in PROMPTS]
    return requests + [requests[5]]


def answer(g: Generation) -> tuple:
    return g.response, g.prompt_tokens, g.new_tokens, g.finished


@dataclass
class EngineRun:
    engine: Engine
    requests: list[GenerationRequest]
    first: list[Generation]
    first_stats: dict
    progress: list[int]  # what on_batch was called with during the first call
    progress_again: list[int]  # ... and during the second
    again: list[Generation]
    again_stats: dict
    totals: dict
    expected: list[tuple] | None  # answer() of each request as the engine must give it


def run_engine(engine: Engine, expected: Callable[[list[GenerationRequest]], list[Generation]] | None) -> EngineRun:
    """Two calls with the same population: the first generates, the second must come from the cache."""
    requests = population()
    progress: list[int] = []
    progress_again: list[int] = []
    try:
        engine.on_batch = progress.append
        first = engine.generate(requests)
        first_stats = dict(engine.last_stats)
        engine.on_batch = progress_again.append
        again = engine.generate(requests)
        again_stats = dict(engine.last_stats)
    finally:
        engine.on_batch = None
    return EngineRun(engine, requests, first, first_stats, progress, progress_again, again, again_stats,
                     dict(engine.totals), [answer(g) for g in expected(requests)] if expected else None)


class EngineSuite:
    def test_declares_the_engine_interface(self, engine_run):
        engine = engine_run.engine
        assert isinstance(engine, Engine)
        assert engine.dtype in DTYPES and engine.dtype != "auto" or engine.info().get("engine") == "vllm"
        info = engine.info()
        assert {"model_id", "revision", "chat_template", "dtype"} <= set(info)
        assert json.loads(json.dumps(info)) == info and engine.info() == info  # plain, stable identity
        assert set(engine.unsupported_knobs) <= {f.name for f in dataclasses.fields(DecodingConfig)}

    def test_answers_every_request_once_in_order(self, engine_run):
        assert [g.index for g in engine_run.first] == list(range(len(engine_run.requests)))
        assert answer(engine_run.first[-1]) == answer(engine_run.first[5])  # the repeated request
        assert engine_run.first_stats["generated"] == len(engine_run.requests) - 1  # ... generated once
        assert len({g.response for g in engine_run.first}) > len(PROMPTS)  # configurations and samples differ

    def test_answers_as_expected(self, engine_run):
        assert [answer(g) for g in engine_run.first] == engine_run.expected

    def test_progress_counts_every_answer_once(self, engine_run):
        assert sum(engine_run.progress) == len(engine_run.requests) - 1  # generated (the repeat is not)
        assert sum(engine_run.progress_again) == len(engine_run.requests)  # all from the cache, reported at once
        assert all(n > 0 for n in engine_run.progress + engine_run.progress_again)

    def test_a_second_call_comes_from_the_cache(self, engine_run):
        n = len(engine_run.requests)
        assert engine_run.again_stats["generated"] == 0 and engine_run.again_stats["cached"] == n
        assert [answer(g) for g in engine_run.again] == [answer(g) for g in engine_run.first]
        assert engine_run.totals == {"generated": n - 1, "cached": n}

    def test_close_may_be_called_twice(self, engine_run):
        engine_run.engine.close()
        engine_run.engine.close()
