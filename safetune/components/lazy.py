"""Stand-ins that build a Lightning component on first use.

A search or evaluation answered entirely from the cache never scores anything, so it should not
import torch and Lightning (about 5 s here) just to construct modules it will not call.
"""

from __future__ import annotations

import numpy as np

from safetune.components.embeddings import DEFAULT_EMBEDDER


class LazyRelevance:
    """``RelevanceModule`` (sentence-embedding cosine per pair), built at the first ``score``."""

    def __init__(self, embedder: str = DEFAULT_EMBEDDER):
        self.embedder_name = embedder  # part of the candidate-result cache key
        self._module = None

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        if self._module is None:
            from safetune.components.relevance import RelevanceModule

            self._module = RelevanceModule(self.embedder_name)
        return self._module.score(prompts, responses)
