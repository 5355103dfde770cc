"""Prompt-response relevance: the one cosine, computed once per pair and shared.

SafeTune's second objective is the cosine between a prompt's and its response's sentence
embeddings; the heuristic and trained judges need the same cosine (the trained judge the vectors
too). ``pair_vectors`` embeds every distinct text of a batch once, and the evaluator hands the
result to the judges, so no response is encoded twice. An empty or blank response has the zero
vector, so its cosine is 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairVectors:
    embedder: str  # the embedder's name: vectors from another embedder mean nothing to a judge trained on this one
    prompts: np.ndarray  # (n, d) unit vectors
    responses: np.ndarray  # (n, d) unit vectors, zero rows for blank responses

    @functools.cached_property
    def cosine(self) -> np.ndarray:
        """Cosine per pair (float32); 0 for a blank response."""
        return (self.prompts * self.responses).sum(axis=1)

    def take(self, positions) -> "PairVectors":
        positions = list(positions)
        return PairVectors(self.embedder, self.prompts[positions], self.responses[positions])

    def __len__(self) -> int:
        return len(self.prompts)


def pair_vectors(embedder, prompts: list[str], responses: list[str]) -> PairVectors:
    """Embed prompts and non-blank responses (each distinct text once, one call)."""
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses must have the same length")
    if not prompts:
        return PairVectors(embedder.name, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))
    vec = embedder.encode(list(prompts) + [r for r in responses if r.strip()])
    zero = np.zeros_like(next(iter(vec.values())))
    return PairVectors(embedder.name, np.stack([vec[p] for p in prompts]),
                       np.stack([vec[r] if r.strip() else zero for r in responses]))
