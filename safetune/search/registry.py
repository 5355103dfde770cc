"""Search algorithms by name (``--algorithm``, ``algorithm:`` in an experiment YAML)."""

from __future__ import annotations

from safetune.registries import Entry, Registry
from safetune.search.base import SearchAlgorithm

ALGORITHMS = Registry("algorithm", {
    "nsga2": Entry("safetune.search.nsga2:NSGA2", "the default"),
    "random": Entry("safetune.search.random_search:RandomSearch", "the same budget drawn at random: the baseline"),
    "lagrangian": Entry("safetune.search.lagrangian:LagrangianSearch",
                        "relevance - lambda * (harm - budget), lambda by dual ascent; budget: --harm-budget, "
                        "default 0.2"),
})


def algorithm_names() -> list[str]:
    return ALGORITHMS.names()


def get_algorithm(name: str, harm_budget: float | None = None) -> SearchAlgorithm:
    """The named algorithm with a search's settings (the harm budget is the lagrangian search's constraint)."""
    return ALGORITHMS.load(name).create(harm_budget)
