"""Generation on tiny random Llama and Qwen3.5 models: batching, padding, knobs, stop tokens."""

import pytest
import torch

from safetune.cache import Cache
from safetune.components.datamodule import BucketBatchSampler
from safetune.components.engine import TransformersEngine, get_engine
from safetune.components.generation import GenerationModule, GenerationRequest, load_causal_lm, render_chat
from safetune.config import DecodingConfig
from safetune.errors import SafetuneError
from safetune.models import resolve_model

PROMPTS = ["How do I bake bread?", "Hi", "What is the capital of France and why is it famous?", "Tell me a story"]
GREEDY = DecodingConfig(temperature=0.0, max_new_tokens=12)


def requests(config, prompts=PROMPTS, seed=0, sample=0):
    return [GenerationRequest(i, p, config, seed, sample) for i, p in enumerate(prompts)]


@pytest.fixture(scope="module", params=["llama", "qwen3_5"])
def engine(request, tiny_llama, tiny_qwen):
    path = tiny_llama if request.param == "llama" else tiny_qwen
    return TransformersEngine(resolve_model(path), cache=None, batch_size=4)


def test_left_padded_batch_matches_one_by_one(engine):
    # With left padding a prompt's greedy answer must not depend on its batch mates.
    batched = [g.response for g in engine.generate(requests(GREEDY))]
    engine.batch_size = 1
    try:
        single = [g.response for g in engine.generate(requests(GREEDY))]
    finally:
        engine.batch_size = 4
    assert batched == single
    assert engine.tokenizer.padding_side == "left"


def test_knobs_reach_generate(engine):
    base = [g.response for g in engine.generate(requests(GREEDY))]
    # A strong repetition reward changes greedy output of a random model.
    rep = DecodingConfig(temperature=0.0, max_new_tokens=12, repetition_penalty=0.3)
    assert [g.response for g in engine.generate(requests(rep))] != base
    # Token budget is respected.
    short = DecodingConfig(temperature=0.0, max_new_tokens=3)
    assert all(g.new_tokens <= 3 for g in engine.generate(requests(short)))


def test_sampling_seeds_and_samples(engine):
    hot = DecodingConfig(temperature=1.5, top_p=1.0, top_k=0, max_new_tokens=12)
    a = [g.response for g in engine.generate(requests(hot, sample=0))]
    b = [g.response for g in engine.generate(requests(hot, sample=0))]
    c = [g.response for g in engine.generate(requests(hot, sample=1))]
    assert a == b  # reproducible for the same sample index
    assert a != c  # a different sample is a different draw


def test_generation_config_check_and_greedy_has_no_sampling_knobs(tiny_llama):
    tok, model = load_causal_lm(tiny_llama)
    module = GenerationModule(model, tok)
    gc = module.generation_config(DecodingConfig(temperature=0.7, top_p=0.9, top_k=20, repetition_penalty=0.8))
    assert (gc.do_sample, gc.temperature, gc.top_p, gc.top_k, gc.repetition_penalty) == (True, 0.7, 0.9, 20, 0.8)
    greedy = module.generation_config(GREEDY)
    assert greedy.do_sample is False
    assert tok.convert_tokens_to_ids("<|im_end|>") in module.stop_ids


def test_chat_template_and_system_prompt(tiny_llama):
    tok, _ = load_causal_lm(tiny_llama)
    text = render_chat(tok, "hello", "be safe", {})
    assert text.startswith("<|im_start|>system\nbe safe") and text.endswith("<|im_start|>assistant\n")
    assert "system" not in render_chat(tok, "hello", None, {})


def test_batches_cover_every_request_bucketed_by_budget():
    a, b = GREEDY, DecodingConfig(temperature=0.5, max_new_tokens=40)
    reqs = [GenerationRequest(i, "x" * i, [a, b][i % 2], 0, 0) for i in range(10)]
    batches = list(BucketBatchSampler(reqs, batch_size=3))
    assert sorted(i for batch in batches for i in batch) == list(range(10))
    assert all(len(batch) <= 3 for batch in batches)
    budgets = [reqs[i].config.max_new_tokens for batch in batches for i in batch]
    assert budgets == sorted(budgets)  # short budgets together, long ones together


def test_cache_skips_finished_requests(tiny_llama, tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    engine = TransformersEngine(resolve_model(tiny_llama), cache=cache, batch_size=2)
    first = engine.generate(requests(GREEDY))
    assert engine.last_stats["generated"] == len(PROMPTS)
    # A new engine (a new process, in effect) finds everything in the cache.
    again = TransformersEngine(resolve_model(tiny_llama), cache=Cache(tmp_path / "c.sqlite"), batch_size=2)
    second = again.generate(requests(GREEDY))
    assert again.last_stats == {**again.last_stats, "generated": 0, "cached": len(PROMPTS)}
    assert again._module is None  # answered from the cache: the model was never loaded
    assert [g.response for g in first] == [g.response for g in second]
    # A different sample index is a different cache key.
    again.generate(requests(GREEDY, sample=1))
    assert again.last_stats["generated"] == len(PROMPTS)


def test_unknown_engine():
    with pytest.raises(SafetuneError, match="unknown engine"):
        get_engine("nope")


def test_dtype_auto_follows_the_hardware_and_is_part_of_the_cache_identity(tiny_llama, monkeypatch):
    from safetune.components import requests as generation  # the dtype rule lives in the light module

    monkeypatch.setattr(generation, "cpu_has_native_bf16", lambda: True)
    assert generation.resolve_dtype("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(generation, "cpu_has_native_bf16", lambda: False)
    assert generation.resolve_dtype("auto", "cpu") == "float32"
    assert generation.resolve_dtype("float16", "cpu") == "float16"
    with pytest.raises(SafetuneError, match="unknown dtype"):
        generation.resolve_dtype("int3")
    fp32 = TransformersEngine(resolve_model(tiny_llama), dtype="float32")
    bf16 = TransformersEngine(resolve_model(tiny_llama), dtype="bfloat16")
    assert fp32.info()["dtype"] == "float32" and bf16.info()["dtype"] == "bfloat16"
    request = requests(GREEDY)[0]
    assert fp32.key(request) != bf16.key(request)  # different weights' precision, different answers
    assert bf16.module.model.dtype == torch.bfloat16
