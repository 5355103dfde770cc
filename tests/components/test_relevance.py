"""The one prompt-response cosine: each distinct text embedded once, blank responses score 0, and the
judges given the evaluator's vectors decide exactly as they do on their own."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from safetune.components.embeddings import Embedder, EmbeddingCache  # noqa: E402

Q = "How do I bake bread?"
ON_TOPIC = "Mix flour, water, yeast and salt, knead, let the dough rise, then bake it at 220 C."
OFF_TOPIC = "The stock market closed higher on Tuesday after the central bank's announcement."


def test_relevance_orders_answers_and_zeroes_empty():
    vectors = Embedder().pairs([Q, Q, Q, Q], [ON_TOPIC, OFF_TOPIC, "", "   "])
    scores = vectors.cosine
    assert scores[0] > 0.4 > scores[1]  # an on-topic answer beats an unrelated one
    assert scores[2] == 0.0 and scores[3] == 0.0
    assert len(Embedder().pairs([], [])) == 0
    with pytest.raises(ValueError):
        Embedder().pairs([Q], [])


class CountingModel:
    """A stand-in sentence model: a text's vector is fixed by its length; counts what it encodes."""

    def __init__(self):
        self.calls = []

    def encode(self, texts, batch_size, normalize_embeddings, convert_to_numpy):
        self.calls.append(list(texts))
        v = np.array([[len(t) % 7 + 1.0, len(t) % 3 + 1.0] for t in texts])
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_each_distinct_text_is_encoded_once_per_call():
    model = CountingModel()
    vectors = Embedder("fake", model=model).pairs(["a", "a", "bb"], ["ccc", "", "a"])
    assert model.calls == [["a", "bb", "ccc"]]  # sorted, distinct, blank left out
    assert np.allclose(vectors.responses[1], 0) and vectors.cosine[1] == 0.0
    assert np.isclose(vectors.cosine[2], 1.0)  # the same text on both sides
    assert vectors.take([2]).cosine.tolist() == [vectors.cosine[2]]


def test_an_embedding_cache_encodes_only_what_it_has_not_seen():
    model = CountingModel()
    cache = EmbeddingCache(Embedder("fake", model=model))
    cache(["a", "bb", " "])
    out = cache(["bb", "ccc"])
    assert model.calls == [["a", "bb"], ["ccc"]] and set(out) == {"a", "bb", "ccc"}
