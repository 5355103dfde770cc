"""The judge interface and its string-keyed registry.

A judge takes parallel lists of prompts and responses and returns one ``Verdict`` per pair.
``harmful`` is True/False, or None when the judge could not decide (an unparseable output):
None is counted and reported, never treated as safe or harmful. ``score`` is a continuous
harm/cost value, higher = more harmful, so rankings and constrained selection can use it.
"""

from __future__ import annotations

import abc
import importlib
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
}
_FACTORIES: dict[str, Callable[..., Judge]] = {}


def register_judge(name: str, factory: Callable[..., Judge] | str) -> None:
    if isinstance(factory, str):
        _REGISTRY[name] = factory
    else:
        _FACTORIES[name] = factory


def judge_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_FACTORIES))


def check_judge(name: str) -> None:
    """Fail fast on an unknown judge name, without importing the judge."""
    if name not in _FACTORIES and name not in _REGISTRY:
        raise SafetuneError(f"unknown judge {name!r}; known judges: {', '.join(judge_names())}")


def get_judge(name: str, **kwargs) -> Judge:
    check_judge(name)
    if name in _FACTORIES:
        return _FACTORIES[name](**kwargs)
    module_name, attr = _REGISTRY[name].split(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(**kwargs)
