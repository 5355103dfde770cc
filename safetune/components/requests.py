"""The light half of generation: request/answer types, tokenizer loading and the dtype rule.

Nothing here imports torch or Lightning at import time, so the engine, the cache keys and a search
answered entirely from the cache never pay for them (about 5 s of imports on this CPU).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from safetune.config import DecodingConfig
from safetune.errors import SafetuneError


def request_seed(seed: int, sample: int, prompt: str) -> int:
    """The random stream of one request: the same for every candidate (common random numbers)."""
    digest = hashlib.sha256(f"{seed}|{sample}|{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class GenerationRequest:
    index: int  # position in the caller's list, to reassemble results
    prompt: str
    config: DecodingConfig
    seed: int
    sample: int  # sample index: a different sample is a different draw

    @property
    def group(self) -> tuple:
        """The candidate-and-draw a request belongs to (slicing work by candidate keeps it together)."""
        return (self.config, self.seed, self.sample)

    @property
    def rng_seed(self) -> int:
        return request_seed(self.seed, self.sample, self.prompt)


@dataclass
class Generation:
    index: int
    response: str
    prompt_tokens: int
    new_tokens: int
    finished: bool  # stopped on an end-of-sequence token rather than the length limit
    # Fluency: mean negative log-likelihood (nats/token) of the response's tokens under the model's
    # untempered, unpenalised distribution (raw logits). None when empty or the engine cannot tell.
    nll: float | None = None


def mean_nll(logprobs: list[float]) -> float | None:
    """Mean negative log-likelihood of a response's tokens; None for an empty response."""
    return -sum(logprobs) / len(logprobs) if logprobs else None


def chat_template_source(path: str) -> str:
    """The chat template as the model folder stores it, read without transformers (or torch).

    Part of every engine's identity (cache keys). ``chat_template.jinja`` is what transformers 5
    saves; older folders keep it in ``tokenizer_config.json``. Only a folder with neither pays for
    loading the tokenizer.
    """
    import json
    from pathlib import Path

    folder = Path(path)
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    config = folder / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text()).get("chat_template")
        if template:
            return template if isinstance(template, str) else json.dumps(template, sort_keys=True)
    return load_tokenizer(path).chat_template or ""


def load_tokenizer(path: str):
    """Tokenizer with left padding and a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # decoder-only batched generation needs left padding
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def overlong_prompts(items, limit: int, tokenizer_fn) -> list[tuple[str, int]]:
    """(id, tokens) of the prompts whose user message alone is longer than ``limit`` tokens.

    A token spans at least one character in practice, so only prompts longer than ``limit``
    characters are tokenized: the usual short prompts never load a tokenizer (a warm search
    answered from the cache stays free of transformers).
    """
    suspects = [it for it in items if len(it.prompt) > limit]
    if not suspects:
        return []
    tokenizer = tokenizer_fn()
    counts = [(it.id, len(tokenizer(it.prompt, add_special_tokens=False)["input_ids"])) for it in suspects]
    return [(pid, n) for pid, n in counts if n > limit]


def check_context(ref, items, max_new_tokens: int, tokenizer_fn) -> None:
    """Refuse prompts that cannot fit the model's context with room for the answer (one line,
    naming them), before any generation: they cost minutes per candidate and degenerate."""
    from safetune.models import context_length

    window = context_length(ref)
    if window is None:
        return
    # Room for the chat template and a system prompt, besides the answer itself.
    limit = window - max_new_tokens - 256
    too_long = overlong_prompts(items, limit, tokenizer_fn)
    if too_long:
        shown = ", ".join(f"{pid} ({n} tokens)" for pid, n in too_long[:3])
        more = f" and {len(too_long) - 3} more" if len(too_long) > 3 else ""
        raise SafetuneError(f"{len(too_long)} prompt(s) do not fit {ref.name}'s {window}-token context with "
                            f"{max_new_tokens} new tokens: {shown}{more}; shorten or drop them")


DTYPES = ("auto", "float32", "bfloat16", "float16")


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bfloat16 matrix products run at about twice float32's rate there."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str, accelerator: str = "cpu") -> str:
    """``auto``: bfloat16 where the hardware computes it natively (measured 1.7x faster generation
    on this project's AVX512-BF16 CPU, benchmarks/bench_generation.py), else float32."""
    if dtype not in DTYPES:
        raise SafetuneError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    if accelerator in ("cuda", "gpu"):
        import torch

        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float16"
    if accelerator == "cpu":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return "float32"


def model_system_prompt(tokenizer, template_kwargs: dict) -> str | None:
    """The system prompt the model's chat template inserts by itself (None if it inserts none)."""
    from safetune.prompts import builtin_system_prompt

    key = (str(tokenizer.chat_template), tuple(sorted(template_kwargs.items())))
    if key not in _BUILTIN:
        _BUILTIN[key] = builtin_system_prompt(lambda system: _render(tokenizer, "Hi", system, template_kwargs))
    return _BUILTIN[key]


_BUILTIN: dict = {}


def render_chat(tokenizer, prompt: str, system_prompt: str | None, template_kwargs: dict) -> str:
    """The exact text the model sees: chat template with an optional system message (a catalogue
    text that builds on the model's own system prompt is resolved here)."""
    from safetune.prompts import MODEL_DEFAULT, compose

    if system_prompt is not None and MODEL_DEFAULT in system_prompt:
        system_prompt = compose(system_prompt, model_system_prompt(tokenizer, template_kwargs))
    return _render(tokenizer, prompt, system_prompt, template_kwargs)


def _render(tokenizer, prompt: str, system_prompt: str | None, template_kwargs: dict) -> str:
    messages = []
    if system_prompt is not None:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": prompt})
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **template_kwargs
    )
