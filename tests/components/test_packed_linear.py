"""Pre-packed bfloat16 linear weights: same bits as F.linear, state untouched, undone cleanly."""

import pytest
import torch

from safetune.components import packed_linear
from safetune.components.engines.transformers import TransformersEngine
from safetune.components.generation import GenerationRequest, load_model
from safetune.components.packed_linear import pack_linears, packing_supported, unpack_linears
from safetune.config import DecodingConfig
from safetune.models import resolve_model

needs_bf16_kernels = pytest.mark.skipif(
    not packing_supported(torch.zeros(1, dtype=torch.bfloat16)), reason="no oneDNN bfloat16 kernels on this CPU")


def linears(model):
    return [m for m in model.modules() if type(m) is torch.nn.Linear]


@needs_bf16_kernels
def test_packed_model_gives_identical_logits_and_keeps_its_state(tiny_llama):
    model = load_model(tiny_llama, "bfloat16")
    ids = torch.randint(0, model.config.vocab_size, (3, 7), generator=torch.Generator().manual_seed(0))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = model(input_ids=ids).logits
        assert pack_linears(model) == len(linears(model)) > 0
        assert all("forward" in m.__dict__ for m in linears(model))
        after = model(input_ids=ids).logits
    assert torch.equal(before, after)
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert pack_linears(model) == len(linears(model))  # again: nothing packed twice
    assert unpack_linears(model) == len(linears(model))
    assert not any("forward" in m.__dict__ for m in linears(model))
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, before)


def test_float32_weights_are_never_packed(tiny_llama):
    # oneDNN's packed float32 kernel rounds differently from the default BLAS: never swapped in.
    model = load_model(tiny_llama, "float32")
    assert pack_linears(model) == 0
    assert not any("forward" in m.__dict__ for m in linears(model))


@needs_bf16_kernels
def test_a_layer_the_packed_kernel_does_not_reproduce_stays_stock(tiny_llama, monkeypatch):
    model = load_model(tiny_llama, "bfloat16")
    monkeypatch.setattr(packed_linear, "_reproduces", lambda *a: False)
    assert pack_linears(model) == 0
    assert not any("forward" in m.__dict__ for m in linears(model))


def test_available_memory_is_a_plausible_byte_count():
    free = packed_linear.available_memory()
    assert free is None or 0 < free < 1 << 50


@needs_bf16_kernels
def test_nothing_is_packed_when_the_copies_would_not_fit_in_memory(tiny_llama, monkeypatch):
    model = load_model(tiny_llama, "bfloat16")
    weights = sum(m.weight.numel() * m.weight.element_size() for m in linears(model))
    monkeypatch.setattr(packed_linear, "available_memory", lambda: 2 * weights - 1)
    assert pack_linears(model) == 0
    monkeypatch.setattr(packed_linear, "available_memory", lambda: 2 * weights)
    assert pack_linears(model) == len(linears(model))


@needs_bf16_kernels
def test_engine_packs_bfloat16_weights_and_answers_the_same(tiny_llama):
    config = DecodingConfig(temperature=0.9, top_p=0.95, max_new_tokens=10)
    reqs = [GenerationRequest(i, p, config, 0, 0) for i, p in enumerate(["Hi", "How do I bake bread?", "Tell me"])]
    answers = {}
    for pack in (False, True):
        engine = TransformersEngine(resolve_model(tiny_llama), cache=None, batch_size=3, dtype="bfloat16")
        engine.module.pack_weights = pack
        answers[pack] = [(g.response, g.nll) for g in engine.generate(reqs)]
        assert engine.module.packed_layers == (len(linears(engine.module.model)) if pack else None)
    assert answers[True] == answers[False]
