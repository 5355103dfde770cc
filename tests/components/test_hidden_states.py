"""HiddenStates: a causal LM's pooled hidden states after some layers, as text vectors."""

import numpy as np
import pytest
import torch

from safetune.components.embeddings import HiddenStates
from safetune.errors import SafetuneError

TEXTS = ["I can't help with that.", "To do it, first take the thing and then the other one, slowly.", "Hi"]


def test_vectors_are_unit_per_layer_and_do_not_depend_on_the_batch(tiny_llama):
    enc = HiddenStates(tiny_llama, [1, 2], batch_size=2)
    out = enc.encode(TEXTS + TEXTS[:1])  # duplicates are encoded once
    assert sorted(out) == [1, 2] and all(sorted(v) == sorted(TEXTS) for v in out.values())
    for vectors in out.values():
        for v in vectors.values():
            assert v.dtype == np.float32 and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    alone = HiddenStates(tiny_llama, [1, 2], batch_size=1).encode(TEXTS)  # right padding: positions as alone
    for k in (1, 2):
        for t in TEXTS:
            np.testing.assert_allclose(out[k][t], alone[k][t], atol=1e-5)
    assert not np.allclose(out[1][TEXTS[0]], out[2][TEXTS[0]])  # different layers, different vectors


def test_equals_the_full_models_normed_states_pooled_without_the_first_token(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    text = TEXTS[1]
    got = HiddenStates(tiny_llama, [1]).encode([text])[1][text]
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    ids = AutoTokenizer.from_pretrained(tiny_llama)(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        h = model.model.norm(model.model(**ids, output_hidden_states=True).hidden_states[1])[0, 1:].mean(0)
    np.testing.assert_allclose(got, (h / h.norm()).numpy(), atol=1e-5)


@pytest.mark.parametrize("layers", [[], [0], [3]])
def test_layers_out_of_range_is_a_clear_error(tiny_llama, layers):
    with pytest.raises(SafetuneError, match="layers must be within 1..2"):
        HiddenStates(tiny_llama, layers)


def test_concatenated_vectors_stay_unit_and_average_the_cosines():
    from safetune.components.embeddings import concatenated

    rng = np.random.default_rng(0)
    unit = lambda n: (lambda v: v / np.linalg.norm(v))(rng.normal(size=n))  # noqa: E731
    a, b = {"x": unit(4), "y": unit(4)}, {"x": unit(3), "y": unit(3)}
    c = concatenated(a, b)
    assert c["x"].dtype == np.float32 and abs(np.linalg.norm(c["x"]) - 1) < 1e-6
    assert abs(c["x"] @ c["y"] - (a["x"] @ a["y"] + b["x"] @ b["y"]) / 2) < 1e-6


class _FakeSentences:
    """Deterministic unit vectors per text, standing in for MiniLM."""

    def encode(self, texts, batch_size, normalize_embeddings, convert_to_numpy):
        import hashlib

        rows = [np.random.RandomState(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)).normal(size=8) for t in texts]
        return np.asarray([r / np.linalg.norm(r) for r in rows], dtype=np.float32)


def test_stacked_embedder_stacks_both_spaces_and_reuses_the_callers_sentence_vectors(tiny_llama):
    from safetune.components.embeddings import Embedder, StackedEmbedder, text_embedder

    base = Embedder("fake", model=_FakeSentences())
    assert text_embedder("fake", None, model=_FakeSentences()).name == "fake"  # no LM: the sentence embedder itself
    stacked = text_embedder("fake", {"model": tiny_llama, "layer": 1}, model=_FakeSentences())
    assert isinstance(stacked, StackedEmbedder) and stacked.name == f"fake+{tiny_llama}@1"
    vec = stacked.encode(TEXTS)
    lm = HiddenStates(tiny_llama, [1]).encode(TEXTS)[1]
    for t in TEXTS:
        assert vec[t].dtype == np.float32 and abs(float(np.linalg.norm(vec[t])) - 1) < 1e-5
        np.testing.assert_allclose(vec[t] * np.sqrt(2), np.concatenate([base.encode([t])[t], lm[t]]), atol=1e-5)
    prompts, responses = [TEXTS[1], TEXTS[1], TEXTS[2]], [TEXTS[0], "  ", TEXTS[2]]
    fresh = stacked.pairs(prompts, responses)
    reused = stacked.pairs(prompts, responses, base_vectors=base.pairs(prompts, responses))
    assert fresh.embedder == reused.embedder == stacked.name
    np.testing.assert_allclose(reused.prompts, fresh.prompts, atol=1e-5)
    np.testing.assert_allclose(reused.responses, fresh.responses, atol=1e-5)
    assert not reused.responses[1].any()  # a blank response stays the zero vector (cosine 0)
    # Vectors of another embedder are not half of this space: encoded afresh.
    other = Embedder("other", model=_FakeSentences()).pairs(prompts, responses)
    np.testing.assert_allclose(stacked.pairs(prompts, responses, base_vectors=other).prompts, fresh.prompts, atol=1e-5)


def test_stacked_embedder_runs_the_lm_once_per_text_within_its_memo_bound(tiny_llama, monkeypatch):
    """A search judges every candidate's answers to the same prompts: the LM half of a text seen lately
    is reused (same vector), only new texts reach the LM, and the memo stays within its bound."""
    from safetune.components import embeddings
    from safetune.components.embeddings import Embedder, StackedEmbedder

    states = HiddenStates(tiny_llama, [1])
    seen = []
    real = states.encode
    monkeypatch.setattr(states, "encode", lambda texts: seen.append(sorted(set(texts))) or real(texts))
    stacked = StackedEmbedder(Embedder("fake", model=_FakeSentences()), tiny_llama, 1, states=states)
    first = stacked.pairs(TEXTS[:2], [TEXTS[2], "Another answer, new to the LM."])
    again = stacked.pairs(TEXTS[:2], [TEXTS[2], "A third answer."])
    assert seen == [sorted(set(TEXTS) | {"Another answer, new to the LM."}), ["A third answer."]]
    np.testing.assert_array_equal(first.prompts, again.prompts)
    monkeypatch.setattr(embeddings, "MEMO_TEXTS", 2)
    stacked.encode(["One more text here."])
    assert len(stacked._memo) == 2 and "One more text here." in stacked._memo
