"""Fluency from the engine: each response's mean NLL under the model's raw distribution.

The engine reads it from the logits it already computes (before temperature, top-k/top-p and the
repetition processors). A teacher-forced forward pass over prompt + response tokens must give the
same numbers, on both decode paths (compacting loop and generate()), whatever knobs were used.
"""

import pytest
import torch

from safetune.components.engines.transformers import TransformersEngine
from safetune.components.requests import GenerationRequest, mean_nll, render_chat
from safetune.config import DecodingConfig
from safetune.models import resolve_model

PROMPTS = ["How do I bake bread?", "Hi", "What is the capital of France and why is it famous?"]
CONFIGS = [
    DecodingConfig(temperature=0.0, max_new_tokens=10),
    # Every processor active: the raw log-probability must not see any of them.
    DecodingConfig(temperature=1.3, top_p=0.8, top_k=30, repetition_penalty=0.7, no_repeat_ngram_size=2,
                   max_new_tokens=10, system_prompt="brief-rule"),
]


def teacher_forced_nll(module, prompt: str, config: DecodingConfig, response_ids: list[int]) -> float:
    tok = module.tokenizer
    text = render_chat(tok, prompt, config.system_prompt_text, {})
    prompt_ids = tok(text, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.inference_mode():
        logits = module.model(input_ids=ids).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    start = len(prompt_ids)
    picked = [logprobs[start - 1 + i, t].item() for i, t in enumerate(response_ids)]
    return -sum(picked) / len(picked)


@pytest.mark.parametrize("compact", [True, False], ids=["compacting", "generate"])
@pytest.mark.parametrize("arch", ["llama", "qwen3_5"])
def test_nll_matches_teacher_forcing(arch, compact, tiny_llama, tiny_qwen):
    engine = TransformersEngine(resolve_model(tiny_llama if arch == "llama" else tiny_qwen), cache=None,
                                batch_size=16, dtype="float32")
    engine.module.compact = compact
    reqs = [GenerationRequest(i, p, c, 0, 0) for i, (p, c) in enumerate((p, c) for c in CONFIGS for p in PROMPTS)]
    gens = engine.generate(reqs)
    decode = engine.module.last_decode
    assert decode["path"] == ("compact" if compact else "generate")
    assert sorted(decode["indices"]) == list(range(len(reqs)))  # one batch holds every request
    tokens = dict(zip(decode["indices"], decode["tokens"]))
    checked = 0
    for r, g in zip(reqs, gens):
        if g.new_tokens == 0:
            assert g.nll is None
            continue
        ids = tokens[r.index][: g.new_tokens]  # the response's tokens, as generated (stop id excluded)
        assert g.nll == pytest.approx(teacher_forced_nll(engine.module, r.prompt, r.config, ids), abs=2e-3)
        checked += 1
    assert checked >= 3


def test_mean_nll_of_nothing_is_none():
    assert mean_nll([]) is None
    assert mean_nll([-1.0, -3.0]) == pytest.approx(2.0)
