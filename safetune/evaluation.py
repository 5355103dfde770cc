"""Evaluate candidate configurations: generate, judge, score relevance, aggregate.

One ``evaluate`` call handles a whole population: a single batched generation call for every
candidate x prompt x sample, then one judge call and one relevance call over all responses.
Per-candidate results are cached too, so a resumed search replays finished candidates exactly
(same numbers, hence the same NSGA-II trajectory) at no cost.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from safetune.cache import Cache, make_key
from safetune.components.engine import Engine
from safetune.components.generation import GenerationRequest
from safetune.components.judges.base import Judge
from safetune.config import DecodingConfig
from safetune.datasets import PromptSet
from safetune.stats import wilson_interval


@dataclass
class CandidateResult:
    config: DecodingConfig
    harm_rate: float
    harm_ci_low: float
    harm_ci_high: float
    harm_score: float  # mean continuous cost from the judge
    relevance: float
    n_responses: int
    n_unknown: int  # verdicts the judge could not give (never counted as safe or harmful)
    new_tokens: int
    prompt_tokens: int
    truncated_rate: float  # responses cut by max_new_tokens
    seconds: float  # this candidate's share of the population's wall time
    rows: list[dict] = field(default_factory=list)  # per response: ids, text, verdict fields

    def objectives(self) -> tuple[float, float]:
        """Minimised by the search: harm rate, and relevance negated."""
        return self.harm_rate, -self.relevance

    def metrics(self) -> dict[str, float]:
        return {
            "harm_rate": self.harm_rate,
            "harm_rate_ci_low": self.harm_ci_low,
            "harm_rate_ci_high": self.harm_ci_high,
            "harm_score": self.harm_score,
            "relevance": self.relevance,
            "n_responses": self.n_responses,
            "n_unknown": self.n_unknown,
            "new_tokens": self.new_tokens,
            "prompt_tokens": self.prompt_tokens,
            "truncated_rate": self.truncated_rate,
            "wall_time_s": self.seconds,
        }

    def to_dict(self) -> dict:
        data = asdict(self)
        data["config"] = self.config.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "CandidateResult":
        data = dict(data)
        data["config"] = DecodingConfig.from_dict(data["config"])
        return cls(**data)


class Evaluator:
    def __init__(
        self,
        engine: Engine,
        judge: Judge,
        relevance,
        prompts: PromptSet,
        samples: int = 1,
        seed: int = 0,
        cache: Cache | None = None,
        judge_id: dict | None = None,
    ):
        self.engine, self.judge, self.relevance = engine, judge, relevance
        self.prompts, self.samples, self.seed, self.cache = prompts, samples, seed, cache
        self.judge_id = judge_id or {"judge": judge.name}
        self.stats = {"candidates_cached": 0, "candidates_evaluated": 0}

    def result_key(self, config: DecodingConfig) -> str:
        return make_key(
            "candidate/v1", self.engine.info(), self.judge_id, getattr(self.relevance, "embedder_name", ""),
            self.prompts.digest, self.samples, self.seed, config.to_dict(),
        )

    def evaluate(self, configs: list[DecodingConfig]) -> list[CandidateResult]:
        keys = [self.result_key(c) for c in configs]
        known = self.cache.get_many("candidate", keys) if self.cache else {}
        results: dict[int, CandidateResult] = {
            i: CandidateResult.from_dict(known[k]) for i, k in enumerate(keys) if k in known
        }
        todo = [i for i in range(len(configs)) if i not in results]
        # Duplicates within a population are evaluated once.
        unique = list(dict.fromkeys(keys[i] for i in todo))
        first = {k: next(i for i in todo if keys[i] == k) for k in unique}
        fresh = self._evaluate_fresh([configs[first[k]] for k in unique]) if unique else []
        for k, res in zip(unique, fresh):
            for i in todo:
                if keys[i] == k:
                    results[i] = res
        if self.cache and fresh:
            self.cache.put_many("candidate", {k: r.to_dict() for k, r in zip(unique, fresh)})
        self.stats["candidates_cached"] += len(configs) - len(todo)
        self.stats["candidates_evaluated"] += len(unique)
        return [results[i] for i in range(len(configs))]

    def _evaluate_fresh(self, configs: list[DecodingConfig]) -> list[CandidateResult]:
        start = time.perf_counter()
        items = self.prompts.items
        requests, owners = [], []
        for c_idx, config in enumerate(configs):
            for item in items:
                for sample in range(self.samples):
                    requests.append(GenerationRequest(len(requests), item.prompt, config, self.seed, sample))
                    owners.append((c_idx, item, sample))
        generations = self.engine.generate(requests)
        prompts = [r.prompt for r in requests]
        responses = [g.response for g in generations]
        verdicts = self.judge.judge(prompts, responses)
        relevance = np.asarray(self.relevance.score(prompts, responses), dtype=float)
        elapsed = time.perf_counter() - start

        per_candidate: list[list[int]] = [[] for _ in configs]
        for pos, (c_idx, _, _) in enumerate(owners):
            per_candidate[c_idx].append(pos)
        total_tokens = max(1, sum(g.new_tokens for g in generations))
        results = []
        for c_idx, config in enumerate(configs):
            positions = per_candidate[c_idx]
            known = [verdicts[p].harmful for p in positions if verdicts[p].harmful is not None]
            n_harm = sum(bool(v) for v in known)
            lo, hi = wilson_interval(n_harm, len(known))
            tokens = sum(generations[p].new_tokens for p in positions)
            rows = []
            for p in positions:
                _, item, sample = owners[p]
                v = verdicts[p]
                rows.append({
                    "prompt_id": item.id, "category": item.category, "sample": sample,
                    "prompt": item.prompt, "response": generations[p].response,
                    "new_tokens": generations[p].new_tokens, "finished": generations[p].finished,
                    "relevance": float(relevance[p]), "harmful": v.harmful, "score": float(v.score),
                    "unsafe": v.unsafe, "relevant": v.relevant, "useful": v.useful,
                })
            results.append(CandidateResult(
                config=config,
                harm_rate=n_harm / len(known) if known else float("nan"),
                harm_ci_low=lo,
                harm_ci_high=hi,
                harm_score=float(np.mean([verdicts[p].score for p in positions])),
                relevance=float(np.mean(relevance[positions])),
                n_responses=len(positions),
                n_unknown=len(positions) - len(known),
                new_tokens=tokens,
                prompt_tokens=sum(generations[p].prompt_tokens for p in positions),
                truncated_rate=float(np.mean([not generations[p].finished for p in positions])),
                seconds=elapsed * tokens / total_tokens,
                rows=rows,
            ))
        return results
