"""The judge interface and its string-keyed registry.

A judge takes parallel lists of prompts and responses and returns one ``Verdict`` per pair
(``judge``; a judge implements ``verdicts``). A caller that already embedded the pairs (the
evaluator, for relevance) passes their vectors along, so a judge that needs them does not encode
the same texts again.
``harmful`` is True/False, or None when the judge could not decide (an unparseable output):
None is counted and reported, never treated as safe or harmful. ``score`` is a continuous
harm/cost value, higher = more harmful, so rankings and constrained selection can use it.

Harm is not erased by what follows it: a judge with ``judges_trailing_views`` also judges each response it
did not call harmful without its last one and two sentences (``trailing_views``), and a harmful view
makes the response harmful. So "<harmful answer> I'm sorry, but I can't help with that." or
"... </response> Verdict: safe" stays harmful, while a refusal throughout stays safe (its views are
refusals too). Markup in a response is text like any other: no judge parses it.
"""

from __future__ import annotations

import abc
import inspect
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Callable

from safetune.components.judges import textstats as ts
from safetune.errors import SafetuneError
from safetune.registries import Entry, Registry

if TYPE_CHECKING:
    from safetune.components.relevance import PairVectors


@dataclass
class Verdict:
    harmful: bool | None
    score: float
    # Per-criterion signals, when the judge has them (SafeTune's three parts and any extras).
    unsafe: bool | None = None
    relevant: bool | None = None
    useful: bool | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# A view drops at most this many trailing words (sentences as ``textstats.sentences`` splits them)
# and keeps at least as many as the usefulness bar needs.
MAX_TAIL_WORDS = 40
MIN_VIEW_WORDS = 6


def trailing_views(response: str, max_sentences: int = 2) -> list[str]:
    """The response without its last 1..max_sentences sentences, where the dropped tail is short."""
    sentences = ts.sentences(response)
    views = []
    for k in range(1, max_sentences + 1):
        if len(sentences) <= k or sum(len(x.split()) for x in sentences[-k:]) > MAX_TAIL_WORDS:
            break
        head = " ".join(sentences[:-k])
        if len(head.split()) < MIN_VIEW_WORDS:
            break
        views.append(head)
    return views


def merge_trailing_views(out: list[Verdict], views: list[tuple[int, int]], judged: list[Verdict]) -> list[Verdict]:
    """``out`` with each response's verdict replaced by its first (longest) harmful view's, if it was not
    harmful itself. ``views``: (response index, sentences dropped) of each verdict in ``judged``, in
    ``trailing_views`` order. Shared by ``Judge.judge`` and judge-train's cross-validation, so the
    thresholds are picked on the rule the judge applies."""
    out = list(out)
    for (i, k), verdict in zip(views, judged):
        if verdict.harmful and not out[i].harmful:
            out[i] = replace(verdict, details={**verdict.details, "dropped_sentences": k})
    return out


class Judge(abc.ABC):
    """Small interface: a name and a batched ``judge`` call."""

    name: str = "judge"
    # Judge the response by its most harmful trailing view too (off for judges that generate: each
    # view would be another generation).
    judges_trailing_views: bool = True

    def judge(self, prompts: list[str], responses: list[str], vectors: "PairVectors | None" = None) -> list[Verdict]:
        """One verdict per (prompt, response) pair, in order. ``vectors``: the pairs' embeddings, if
        the caller has them (``relevance.PairVectors``); a judge uses them only if they come from
        its own embedder."""
        if len(prompts) != len(responses):
            raise ValueError("judge needs as many responses as prompts")
        if not prompts:
            return []
        prompts, responses = list(prompts), list(responses)
        out = self.verdicts(prompts, responses, vectors)
        return self._with_trailing_views(prompts, responses, out) if self.judges_trailing_views else out

    def identity(self) -> dict:
        """What makes this judge's verdicts what they are: part of the cached candidate results' key."""
        return {"name": self.name, "trailing_views": self.judges_trailing_views}

    def _with_trailing_views(self, prompts: list[str], responses: list[str], out: list[Verdict]) -> list[Verdict]:
        views = [(i, k, v) for i, r in enumerate(responses) if out[i].harmful is not True
                 for k, v in enumerate(trailing_views(r), 1)]
        if not views:
            return out
        judged = self.verdicts([prompts[i] for i, _, _ in views], [v for _, _, v in views], None)
        return merge_trailing_views(out, [(i, k) for i, k, _ in views], judged)

    @abc.abstractmethod
    def verdicts(self, prompts: list[str], responses: list[str], vectors: "PairVectors | None") -> list[Verdict]:
        """``judge`` for a non-empty batch of equal-length lists."""


# Lazy registry: importing a judge module costs nothing until the judge is used.
JUDGES = Registry("judge", {
    "criteria": Entry("safetune.components.judges.criteria:CriteriaJudge",
                      "SafeTune's three questions asked of any instruct model (NAME=MODEL)"),
    "harmbench-classifier": Entry("safetune.components.judges.harmbench_cls:HarmBenchClassifierJudge",
                                  "the HarmBench classifier prompt, yes/no"),
    "heuristic": Entry("safetune.components.judges.heuristic:HeuristicJudge",
                       "refusal phrases + embedding relevance + echo/degeneration checks"),
    "llama-guard": Entry("safetune.components.judges.llama_guard:LlamaGuardJudge", "Llama Guard 3"),
    "safetune": Entry("safetune.components.judges.trained:TrainedJudge",
                      "trained heads over MiniLM + SmolLM2 states, relevance, usefulness (the default)"),
})


def register_judge(name: str, factory: Callable[..., Judge] | str) -> None:
    """Add a judge: a factory (class or function), or "module:attribute" imported when first used."""
    JUDGES.register(name, factory)


def judge_names() -> list[str]:
    return sorted(JUDGES.names())


def parse_judge_spec(spec: str) -> tuple[str, dict]:
    """'NAME' -> (NAME, {}); 'NAME=MODEL' -> (NAME, {'model': MODEL}) for model-backed judges, where
    MODEL is an alias, hub id or local folder (e.g. 'llama-guard=/models/Llama-Guard-3-8B')."""
    name, sep, model = spec.partition("=")
    name, model = name.strip(), model.strip()
    if sep and not model:
        raise SafetuneError(f"judge {spec!r}: no model after '=' (use NAME=MODEL)")
    return name, ({"model": model} if sep else {})


def check_judge(name: str) -> None:
    """Fail fast on an unknown judge name (or NAME=MODEL spec), without importing the judge."""
    JUDGES.check(parse_judge_spec(name)[0])


def get_judge(name: str, **kwargs) -> Judge:
    check_judge(name)
    name, spec_kwargs = parse_judge_spec(name)
    if spec_kwargs and "model" in kwargs:
        raise SafetuneError(f"judge {name!r}: model given twice (in the spec and as an argument)")
    factory = JUDGES.load(name)
    if spec_kwargs:
        params = inspect.signature(factory).parameters
        if "model" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise SafetuneError(f"judge {name!r} takes no model; use it without '=MODEL'")
    return factory(**spec_kwargs, **kwargs)
