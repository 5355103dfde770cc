"""Generation on tiny random Llama and Qwen3.5 models: batching, padding, knobs, stop tokens."""

import collections

import pytest
import torch

from safetune.cache import Cache
from safetune.components.datamodule import BucketBatchSampler
from safetune.components.engines import get_engine
from safetune.components.engines.transformers import TransformersEngine
from safetune.components import generation
from safetune.components.generation import (
    GenerationModule,
    GenerationRequest,
    compaction_supported,
    load_causal_lm,
    render_chat,
)
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
    # float32: in bfloat16 a batch's shape changes rounding (engines/base.py: generation_key).
    return TransformersEngine(resolve_model(path), cache=None, batch_size=4, dtype="float32")


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


# --- the compacting decode loop: finished rows leave the batch, tokens stay those of generate() ----------

@pytest.fixture(scope="module")
def tiny_qwen3(tiny_llama, tmp_path_factory) -> str:
    """A tiny random Qwen3 (full attention with q/k norms), with the Llama fixture's tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-qwen3")
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.save_pretrained(folder)
    config = AutoConfig.for_model(
        "qwen3", vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True, initializer_range=0.5,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module", params=["llama", "qwen3", "qwen3_5"])
def module(request, tiny_llama, tiny_qwen3, tiny_qwen):
    path = {"llama": tiny_llama, "qwen3": tiny_qwen3, "qwen3_5": tiny_qwen}[request.param]
    tok, model = load_causal_lm(path)
    return GenerationModule(model, tok)


# Prompts of very different lengths (left padding of different widths), knobs of every kind, and
# per-row budgets from 1 token to the batch maximum.
MIXED_PROMPTS = PROMPTS + ["x", "Water boils at what temperature, and why does the boiling point depend on the "
                           "pressure around it? Answer in detail, step by step.", "I cannot help", "Here is a guide"]
MIXED_CONFIGS = [
    DecodingConfig(temperature=0.0, max_new_tokens=20),
    DecodingConfig(temperature=0.0, repetition_penalty=1.3, max_new_tokens=1),
    DecodingConfig(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=9, system_prompt="policy"),
    DecodingConfig(temperature=0.7, top_k=20, top_p=0.9, repetition_penalty=0.8, max_new_tokens=4),
    DecodingConfig(temperature=1.5, top_k=5, top_p=0.5, no_repeat_ngram_size=2, max_new_tokens=14),
    DecodingConfig(temperature=0.0, no_repeat_ngram_size=3, max_new_tokens=2, system_prompt="none"),
]


def mixed_requests(n=12, seed=0):
    return [GenerationRequest(i, MIXED_PROMPTS[i % len(MIXED_PROMPTS)], MIXED_CONFIGS[i % len(MIXED_CONFIGS)],
                              seed, i % 2) for i in range(n)]


def run(module, reqs, compact: bool):
    """Generations and the rows the model's forward saw, through the loop or through generate()."""
    rows = []
    handle = module.model.register_forward_pre_hook(
        lambda m, args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    module.compact = compact
    try:
        out = module._generate(reqs)
    finally:
        module.compact = True
        handle.remove()
    assert module.last_decode["path"] == ("compact" if compact else "generate")
    return [(g.index, g.response, g.new_tokens, g.finished, g.prompt_tokens) for g in out], sum(rows)


def test_every_tiny_model_takes_the_compacting_path(module):
    assert compaction_supported(module.model) and module.compacting


def test_compacting_loop_matches_generate(module):
    reqs = mixed_requests()
    new, new_rows = run(module, reqs, compact=True)
    stats = dict(module.last_decode)
    old, old_rows = run(module, reqs, compact=False)
    assert new == old
    # Each row ran exactly as many forwards as tokens it produced (its stop token included), and the
    # rows with small budgets left the batch early.
    # (each shared prefix is one more forward of one row: see shared_prefill; a row whose prompt repeats
    # an earlier row's is not prefilled again: see unique_rows)
    duplicates = len(reqs) - stats["prefill_rows"]
    assert duplicates > 0  # the mixed requests repeat (system prompt, prompt) pairs
    assert (new_rows - stats["prefixes_computed"] == stats["forward_rows"]
            == sum(n + finished for _, _, n, finished, _ in new) - duplicates)
    assert stats["compactions"] >= 3 and new_rows < old_rows
    assert {n for _, _, n, _, _ in new} >= {1, 2, 4}


def test_compacting_loop_matches_generate_when_most_rows_stop_early(module, monkeypatch):
    reqs = mixed_requests(seed=3)
    for i, r in enumerate(reqs):  # every row with room to stop early
        reqs[i] = GenerationRequest(r.index, r.prompt, MIXED_CONFIGS[[0, 2, 4][i % 3]], r.seed, r.sample)
    tokens = []
    real = generation.decode_compacting
    monkeypatch.setattr(generation, "decode_compacting", lambda *a, **k: tokens.append(real(*a, **k)) or tokens[-1])
    module._generate(reqs)
    monkeypatch.setattr(generation, "decode_compacting", real)
    # The tokens the model emits after the first in the most rows become stop tokens too.
    common = collections.Counter(t for row in tokens[0] for t in set(row[1:])).most_common(4)
    monkeypatch.setattr(module, "stop_ids", sorted(set(module.stop_ids) | {t for t, _ in common}))
    new, new_rows = run(module, reqs, compact=True)
    stats = dict(module.last_decode)
    old, old_rows = run(module, reqs, compact=False)
    assert new == old
    stopped = [finished and n < r.config.max_new_tokens for (_, _, n, finished, _), r in zip(new, reqs)]
    assert sum(stopped) > len(reqs) // 2
    duplicates = len(reqs) - stats["prefill_rows"]
    assert stats["compactions"] >= 2
    assert new_rows - stats["prefixes_computed"] == sum(n + f for _, _, n, f, _ in new) - duplicates < old_rows


def test_shared_prefixes_give_the_same_tokens_as_whole_prompts(module):
    """Each system prompt's prefix prefilled once and copied into its rows gives the tokens of the
    unshared prefill (Llama, Qwen3); a model with recurrent layers (Qwen3.5) never shares."""
    reqs = mixed_requests(n=18, seed=1)
    shared, shared_rows = run(module, reqs, compact=True)
    stats = dict(module.last_decode)
    module.share_prefix = False
    try:
        whole, whole_rows = run(module, reqs, compact=True)
    finally:
        module.share_prefix = True
    assert shared == whole
    if generation.prefix_sharing_supported(module.model):
        assert module.sharing and stats["shared_prefixes"] >= 3  # default, policy and none each shared
    else:
        assert not module.sharing and stats["shared_prefixes"] == 0


def test_a_prompt_shared_by_several_candidates_is_prefilled_once(module):
    """A population asks every candidate the same prompts: rows with the same system prompt and prompt
    (different knobs, seeds and budgets) are prefilled once and still give generate()'s tokens."""
    configs = [MIXED_CONFIGS[0], MIXED_CONFIGS[1], MIXED_CONFIGS[3], MIXED_CONFIGS[4]]  # all 'default'
    reqs = [GenerationRequest(i, PROMPTS[i % 2], configs[i // 2], 0, i % 3) for i in range(8)]
    new, new_rows = run(module, reqs, compact=True)
    stats = dict(module.last_decode)
    old, _ = run(module, reqs, compact=False)
    assert new == old
    assert stats["prefill_rows"] == 2  # two distinct prompts
    module.dedupe_prompts = False
    try:
        again, again_rows = run(module, reqs, compact=True)
        assert module.last_decode["prefill_rows"] == 8
    finally:
        module.dedupe_prompts = True
    assert again == new and again_rows - new_rows == 6


def test_unique_rows_tell_padding_from_tokens():
    ids = torch.tensor([[0, 5, 6], [0, 5, 6], [7, 5, 6], [0, 5, 6]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]])  # row 3: the same ids, no padding
    assert generation.unique_rows(ids, mask) == ([0, 2, 3], [0, 0, 1, 2])


def test_prefix_lengths_stop_where_the_user_text_begins(tiny_llama):
    tok, model = load_causal_lm(tiny_llama)
    module = GenerationModule(model, tok)
    policy = DecodingConfig(temperature=0.0, max_new_tokens=4, system_prompt="policy")
    reqs = [GenerationRequest(0, "Hi", policy, 0, 0), GenerationRequest(1, "How do I bake bread?", policy, 0, 0),
            GenerationRequest(2, "Hi", GREEDY, 0, 0)]
    texts = [render_chat(tok, r.prompt, r.config.system_prompt_text, {}) for r in reqs]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    lengths = module.prefix_lengths(reqs, enc["input_ids"], enc["attention_mask"])
    empty = tok(render_chat(tok, "", policy.system_prompt_text, {}), add_special_tokens=False)["input_ids"]
    row = enc["input_ids"][1][enc["attention_mask"][1] == 1].tolist()
    assert 0 < lengths[0] == lengths[1] <= len(empty) and row[:lengths[1]] == empty[:lengths[1]]
    assert tok.decode(row[lengths[1]:]).lstrip().startswith("How do I bake")  # the user text is not shared
    assert lengths[2] == 0  # alone with its system prompt in the batch: nothing to share


def test_a_model_whose_cache_cannot_be_row_selected_keeps_generate(tiny_llama, monkeypatch):
    tok, model = load_causal_lm(tiny_llama)
    assert compaction_supported(model)
    monkeypatch.setattr(generation, "_selectable_layer_types", lambda: ())  # e.g. a static or quantized layer
    assert not compaction_supported(model)
    module = GenerationModule(model, tok)
    out = module._generate(requests(GREEDY))
    assert module.last_decode["path"] == "generate" and len(out) == len(PROMPTS)
    monkeypatch.undo()

    class OwnInputs(type(model)):  # a model with its own generate() input preparation is not reproduced
        def prepare_inputs_for_generation(self, *args, **kwargs):
            return super().prepare_inputs_for_generation(*args, **kwargs)

    model.__class__ = OwnInputs
    assert not compaction_supported(model)


def test_a_stored_prefix_is_not_computed_again_and_gives_the_same_tokens(module):
    """The second batch with the same system prompts takes their keys and values from the prefix store."""
    if not generation.prefix_sharing_supported(module.model):
        pytest.skip("no prefix sharing for recurrent layers")
    reqs = mixed_requests(n=18, seed=4)
    module.prefix_store.clear()
    first, _ = run(module, reqs, compact=True)
    cold = dict(module.last_decode)
    again, _ = run(module, reqs, compact=True)
    warm = dict(module.last_decode)
    assert cold["prefixes_computed"] == cold["shared_prefixes"] >= 3
    assert warm["prefixes_computed"] == 0 and warm["shared_prefixes"] == cold["shared_prefixes"]
    assert again == first and len(module.prefix_store) == cold["shared_prefixes"]


def test_the_prefix_store_forgets_the_least_recently_used():
    store = generation.PrefixStore(capacity=2)
    store.put((1,), "a")
    store.put((2,), "b")
    assert store.get((1,)) == "a"  # (2,) is now the least recently used
    store.put((3,), "c")
    assert store.get((2,)) is None and store.get((1,)) == "a" and len(store) == 2


def test_user_turns_prefilled_in_chunks_give_the_tokens_of_one_call(module, monkeypatch):
    """Rows of very different user-turn lengths: chunks of rows (each padded to its own longest) give
    the tokens of a single padded call."""
    if not generation.prefix_sharing_supported(module.model):
        pytest.skip("no prefix sharing for recurrent layers")
    reqs = mixed_requests(n=18, seed=5)
    reqs = [GenerationRequest(r.index, r.prompt * (1 + i % 4), r.config, r.seed, r.sample) for i, r in enumerate(reqs)]
    module.prefix_store.clear()
    monkeypatch.setattr(generation, "PREFILL_CHUNK_ROWS", 4)
    chunked, _ = run(module, reqs, compact=True)
    monkeypatch.setattr(generation, "PREFILL_CHUNK_ROWS", 1000)
    whole, _ = run(module, reqs, compact=True)
    assert chunked == whole
