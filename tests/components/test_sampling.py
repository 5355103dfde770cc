"""Per-row decoding matches transformers' own processors row by row, and never depends on batch mates."""

import pytest
import torch
from transformers import (
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from safetune.components.engines.transformers import TransformersEngine
from safetune.components.generation import GenerationRequest
from safetune.components.sampling import PerRowDecoding, banned_ngram_tokens, request_seed
from safetune.config import DecodingConfig
from safetune.models import resolve_model

VOCAB = 50


def hf_reference(config: DecodingConfig, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The processed logits transformers would sample from for one config (one row, no padding)."""
    out = scores.clone()
    if config.repetition_penalty != 1.0:
        out = RepetitionPenaltyLogitsProcessor(config.repetition_penalty)(input_ids, out)
    if config.no_repeat_ngram_size:
        out = NoRepeatNGramLogitsProcessor(config.no_repeat_ngram_size)(input_ids, out)
    if config.do_sample:
        out = TemperatureLogitsWarper(config.temperature)(input_ids, out)
        if config.top_k:
            out = TopKLogitsWarper(config.top_k)(input_ids, out)
        if config.top_p < 1.0:
            out = TopPLogitsWarper(config.top_p)(input_ids, out)
    return out


CONFIGS = [
    DecodingConfig(temperature=0.0, repetition_penalty=1.3),
    DecodingConfig(temperature=0.0, no_repeat_ngram_size=2),
    DecodingConfig(temperature=0.7, top_k=5, top_p=0.8, repetition_penalty=0.7, no_repeat_ngram_size=3),
    DecodingConfig(temperature=1.4, top_k=0, top_p=0.5),
    DecodingConfig(temperature=1.0, top_k=3, top_p=1.0, repetition_penalty=1.1),
]


def test_rows_match_transformers_processors():
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (len(CONFIGS), 12))
    ids[:, 4:6] = ids[:, 8:10]  # a repeated bigram, so the n-gram ban has work to do
    scores = torch.randn(len(CONFIGS), VOCAB) * 3
    proc = PerRowDecoding(CONFIGS, [1] * len(CONFIGS), prompt_width=6,
                          pad_lengths=torch.zeros(len(CONFIGS), dtype=torch.long), stop_id=0)
    penalised = proc._no_repeat_ngram(ids, proc._repetition_penalty(ids, scores.clone()))
    sampled = torch.nonzero(~proc.greedy).flatten()
    warped = proc._warp(penalised, sampled)
    for row, config in enumerate(CONFIGS):
        expected = hf_reference(config, ids[row:row + 1], scores[row:row + 1])[0]
        mine = warped[list(sampled).index(row)] if row in sampled else penalised[row]
        assert torch.equal(torch.isinf(mine), torch.isinf(expected)), config
        assert torch.allclose(mine[~torch.isinf(mine)], expected[~torch.isinf(expected)], atol=1e-5), config


def test_a_mixed_batch_leaves_the_logits_alone_and_each_row_chooses_as_it_would_alone():
    # Greedy rows take their argmax, sampled rows their own draw, penalties and bans write into one
    # private copy: the logits handed in (the raw distribution fluency is read from) stay untouched.
    torch.manual_seed(3)
    ids = torch.randint(0, VOCAB, (len(CONFIGS), 12))
    ids[:, 4:6] = ids[:, 8:10]
    zeros = torch.zeros(len(CONFIGS), dtype=torch.long)
    for _ in range(5):
        scores = torch.randn(len(CONFIGS), VOCAB) * 3
        kept = scores.clone()
        seeds = list(range(1, len(CONFIGS) + 1))
        mixed = PerRowDecoding(CONFIGS, seeds, prompt_width=6, pad_lengths=zeros, stop_id=0).choose(ids, scores)
        assert torch.equal(scores, kept)
        for row, config in enumerate(CONFIGS):
            alone = PerRowDecoding([config], seeds[row:row + 1], prompt_width=6, pad_lengths=zeros[:1], stop_id=0)
            assert int(alone.choose(ids[row:row + 1], scores[row:row + 1])[0]) == int(mixed[row]), config
        assert torch.equal(scores, kept)  # also for a row with a ban and no penalty (no copy of its own)


def test_greedy_rows_take_the_argmax_and_limits_end_rows():
    scores = torch.randn(2, VOCAB)
    configs = [DecodingConfig(temperature=0.0, max_new_tokens=3), DecodingConfig(temperature=0.0, max_new_tokens=1)]
    proc = PerRowDecoding(configs, [0, 0], prompt_width=4, pad_lengths=torch.zeros(2, dtype=torch.long), stop_id=7)
    out = proc(torch.zeros(2, 5, dtype=torch.long), scores)  # step 1: row 1 is at its limit
    assert int(out[0].argmax()) == int(scores[0].argmax())
    assert int(out[1].argmax()) == 7 and torch.isinf(out[1]).sum() == VOCAB - 1


def test_select_keeps_the_chosen_rows_state():
    # Dropping rows (the compacting decode loop) leaves the kept rows as a fresh processor for them would be.
    torch.manual_seed(2)
    ids = torch.randint(0, VOCAB, (len(CONFIGS), 9))
    ids[:, 3:5] = ids[:, 6:8]
    pads = torch.tensor([0, 2, 1, 3, 0])
    seeds = [11, 12, 13, 14, 15]
    full = PerRowDecoding(CONFIGS, seeds, prompt_width=6, pad_lengths=pads, stop_id=0)
    full.select([4, 2, 1])
    alone = PerRowDecoding([CONFIGS[i] for i in (4, 2, 1)], [seeds[i] for i in (4, 2, 1)], prompt_width=6,
                           pad_lengths=pads[[4, 2, 1]], stop_id=0)
    for step in range(3):
        scores = torch.randn(3, VOCAB) * 3
        step_ids = torch.cat([ids[[4, 2, 1]], torch.randint(0, VOCAB, (3, step))], dim=1)
        assert torch.equal(full(step_ids, scores.clone()), alone(step_ids, scores.clone()))


def test_sampling_follows_the_distribution_and_its_seed():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2] + [0.0] * (VOCAB - 3)]))
    config = DecodingConfig(temperature=1.0, top_k=0, top_p=1.0)
    draws = []
    proc = PerRowDecoding([config], [123], prompt_width=1, pad_lengths=torch.zeros(1, dtype=torch.long), stop_id=0)
    for _ in range(4000):
        draws.append(int(proc(torch.zeros(1, 1, dtype=torch.long), logits.clone()).argmax()))
    freq = torch.bincount(torch.tensor(draws), minlength=VOCAB)[:4].float() / len(draws)
    assert torch.allclose(freq[:3], torch.tensor([0.5, 0.3, 0.2]), atol=0.03) and freq[3] == 0
    again = PerRowDecoding([config], [123], 1, torch.zeros(1, dtype=torch.long), 0)
    assert [int(again(torch.zeros(1, 1, dtype=torch.long), logits.clone()).argmax()) for _ in range(50)] == draws[:50]


def test_banned_ngrams_rule():
    assert banned_ngram_tokens([1, 2, 3, 1, 2], 3) == [3]
    assert sorted(banned_ngram_tokens([1, 2, 1, 3, 1], 2)) == [2, 3]
    assert banned_ngram_tokens([1, 2], 4) == []


def test_request_seed_is_shared_across_candidates_but_not_samples():
    assert request_seed(0, 0, "p") == request_seed(0, 0, "p")
    assert len({request_seed(0, 0, "p"), request_seed(0, 1, "p"), request_seed(1, 0, "p"), request_seed(0, 0, "q")}) == 4


@pytest.fixture(scope="module")
def llama_engine(tiny_llama):
    # float32: in bfloat16 a batch's shape changes rounding (engines/base.py: generation_key).
    return TransformersEngine(resolve_model(tiny_llama), cache=None, batch_size=16, dtype="float32")


def test_a_response_does_not_depend_on_its_batch(llama_engine):
    prompts = ["How do I bake bread?", "Hi", "What is the capital of France and why is it famous?"]
    configs = [DecodingConfig(temperature=1.2, top_p=0.9, max_new_tokens=10, system_prompt="policy"),
               DecodingConfig(temperature=0.0, repetition_penalty=0.8, max_new_tokens=6),
               DecodingConfig(temperature=0.8, top_k=10, no_repeat_ngram_size=2, max_new_tokens=8, system_prompt="none")]
    mixed = [GenerationRequest(i, p, c, 0, 0) for i, (c, p) in enumerate((c, p) for c in configs for p in prompts)]
    together = llama_engine.generate(mixed)
    alone = [llama_engine.generate([GenerationRequest(0, r.prompt, r.config, r.seed, r.sample)])[0] for r in mixed]
    assert [g.response for g in together] == [g.response for g in alone]
    assert all(g.new_tokens <= r.config.max_new_tokens for g, r in zip(together, mixed))


def test_out_of_memory_halves_the_batch(llama_engine, monkeypatch):
    module = llama_engine.module
    real = module._generate
    sizes = []

    def flaky(batch):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")
        return real(batch)

    monkeypatch.setattr(module, "_generate", flaky)
    reqs = [GenerationRequest(i, f"prompt {i}", DecodingConfig(temperature=0.0, max_new_tokens=4), 0, 0) for i in range(5)]
    out = llama_engine.generate(reqs)
    assert [g.index for g in out] == list(range(5))
    assert sizes == [5, 2, 3, 1, 2]  # 5 -> 2 + 3, and the 3 that still fails -> 1 + 2

    def broken(batch):
        raise ValueError("not a memory problem")

    monkeypatch.setattr(module, "_generate", broken)
    with pytest.raises(ValueError):
        llama_engine.generate(reqs[:1] + [GenerationRequest(1, "other", reqs[0].config, 0, 0)])


def test_top_p_head_shortcut_equals_the_full_sort():
    torch.manual_seed(1)
    peaked = torch.randn(6, 3000) * 6  # most mass in few tokens: the head path
    flat = torch.randn(6, 3000) * 0.1  # mass spread thin: the full-sort fallback
    for scores in (peaked, flat):
        for p in (0.3, 0.9, 0.99):
            mine = PerRowDecoding._top_p(scores.clone(), torch.full((6,), p), head=64)
            expected = TopPLogitsWarper(p)(None, scores.clone())
            assert torch.equal(torch.isinf(mine), torch.isinf(expected)), p


def reference_draw(proc: PerRowDecoding, scores: torch.Tensor, rows: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The definition: inverse CDF, in vocabulary order, of softmax over the whole warped vocabulary."""
    cdf = proc._warp(scores, rows).softmax(dim=-1).cumsum(dim=-1)
    return torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).flatten()


@pytest.mark.parametrize("spread", [6.0, 0.1])  # peaked: the candidate sets; flat: top-p's full-sort fallback
def test_sampling_on_candidate_sets_equals_the_full_vocabulary_draw(spread):
    configs = [
        DecodingConfig(temperature=0.7, top_k=5, top_p=1.0),
        DecodingConfig(temperature=1.3, top_k=40, top_p=0.8),
        DecodingConfig(temperature=1.0, top_k=0, top_p=0.9),
        DecodingConfig(temperature=0.5, top_k=0, top_p=1.0),  # neither: the full path
        DecodingConfig(temperature=1.0, top_k=2000, top_p=0.95),  # k beyond the head
    ]
    proc = PerRowDecoding(configs, [0] * len(configs), prompt_width=1,
                          pad_lengths=torch.zeros(len(configs), dtype=torch.long), stop_id=0)
    rows = torch.arange(len(configs))
    gen = torch.Generator().manual_seed(3)
    for trial in range(200):
        scores = torch.randn(len(configs), 3000, generator=gen) * spread
        scores[1, :10] = -float("inf")  # banned tokens (no-repeat n-grams) are never drawn
        u = torch.rand(len(configs), generator=gen)
        mine = proc._sample(scores, rows, u)
        assert torch.equal(mine, reference_draw(proc, scores, rows, u)), trial


def test_penalties_ignore_left_padding():
    """Padding tokens (any id) in front of a row change neither the repetition penalty nor the n-gram ban."""
    gen = torch.Generator().manual_seed(7)
    configs = [DecodingConfig(temperature=0.0, repetition_penalty=1.5, no_repeat_ngram_size=n) for n in (1, 2, 3, 0)]
    pads = torch.tensor([0, 3, 5, 2])
    ids = torch.randint(0, VOCAB, (len(configs), 14), generator=gen)
    ids[:, 9:11] = ids[:, 12:14]  # repeated bigrams
    ids[1, :3] = ids[1, -1]  # padding holding the last token's id: still not a repeat
    scores = torch.randn(len(configs), VOCAB, generator=gen) * 3
    proc = PerRowDecoding(configs, [0] * len(configs), prompt_width=10, pad_lengths=pads, stop_id=0)
    raw = scores.clone()
    mine = proc._no_repeat_ngram(ids, proc._repetition_penalty(ids, scores))
    assert torch.equal(scores, raw)  # the raw logits are never written
    for row, config in enumerate(configs):
        expected = hf_reference(config, ids[row:row + 1, int(pads[row]):], raw[row:row + 1])[0]
        assert torch.equal(torch.isinf(mine[row]), torch.isinf(expected)), config
        finite = ~torch.isinf(expected)
        assert torch.allclose(mine[row][finite], expected[finite]), config
