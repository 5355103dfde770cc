"""The judge interface and its string-keyed registry.

A judge takes parallel lists of prompts and responses and returns one ``Verdict`` per pair.
``harmful`` is True/False, or None when the judge could not decide (an unparseable output):
None is counted and reported, never treated as safe or harmful. ``score`` is a continuous
harm/cost value, higher = more harmful, so rankings and constrained selection can use it.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from dataclasses import asdict, dataclass, field
from typing import Callable

from safetune.errors import SafetuneError


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


class Judge(abc.ABC):
    """Small interface: a name and a batched ``judge`` call."""

    name: str = "judge"

    @abc.abstractmethod
    def judge(self, prompts: list[str], responses: list[str]) -> list[Verdict]:
        """Return one verdict per (prompt, response) pair, in order."""


# Lazy registry: name -> "module:factory". Importing a judge module costs nothing until used.
_REGISTRY: dict[str, str] = {
    "heuristic": "safetune.components.judges.heuristic:HeuristicJudge",
    "safetune": "safetune.components.judges.trained:TrainedJudge",
    "llama-guard": "safetune.components.judges.llama_guard:LlamaGuardJudge",
    "harmbench-classifier": "safetune.components.judges.harmbench_cls:HarmBenchClassifierJudge",
    "criteria": "safetune.components.judges.criteria:CriteriaJudge",
}
_FACTORIES: dict[str, Callable[..., Judge]] = {}


def register_judge(name: str, factory: Callable[..., Judge] | str) -> None:
    if isinstance(factory, str):
        _REGISTRY[name] = factory
    else:
        _FACTORIES[name] = factory


def judge_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_FACTORIES))


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
    base, _ = parse_judge_spec(name)
    if base not in _FACTORIES and base not in _REGISTRY:
        raise SafetuneError(f"unknown judge {base!r}; known judges: {', '.join(judge_names())}")


def get_judge(name: str, **kwargs) -> Judge:
    check_judge(name)
    name, spec_kwargs = parse_judge_spec(name)
    if spec_kwargs and "model" in kwargs:
        raise SafetuneError(f"judge {name!r}: model given twice (in the spec and as an argument)")
    if name in _FACTORIES:
        factory = _FACTORIES[name]
    else:
        module_name, attr = _REGISTRY[name].split(":")
        factory = getattr(importlib.import_module(module_name), attr)
    if spec_kwargs:
        params = inspect.signature(factory).parameters
        if "model" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise SafetuneError(f"judge {name!r} takes no model; use it without '=MODEL'")
    return factory(**spec_kwargs, **kwargs)
