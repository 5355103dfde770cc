"""vLLM on GPUs: one ``generate`` call per population, every request with its own sampling parameters.

vLLM takes a ``SamplingParams`` per prompt, so a whole population (every candidate's knobs and
system prompt) goes in one call and its continuous batching does the scheduling. The search does
not change: this is one more ``Engine`` behind the registry (``--engine vllm``). vLLM is not a
dependency (it needs a GPU); ``pip install vllm`` where you run it.

What does not map: vLLM has no ``no_repeat_ngram_size``, so a candidate that sets it is rejected
with a clear error (bound it to 0:0 in the search space). vLLM's sampler draws differently from
``PerRowDecoding`` even for the same seed, so its responses are cached under their own identity.
"""

from __future__ import annotations

from typing import Callable

from safetune.cache import Cache
from safetune.components.engines.base import ModelEngine, engine_info
from safetune.components.requests import Generation, GenerationRequest, mean_nll, render_chat, request_seed
from safetune.config import DecodingConfig
from safetune.errors import SafetuneError
from safetune.models import ModelRef


def sampling_params_kwargs(config: DecodingConfig, seed: int) -> dict:
    """The vLLM ``SamplingParams`` arguments for one request (tested without vLLM or a GPU)."""
    if config.no_repeat_ngram_size:
        raise SafetuneError(
            f"the vllm engine cannot apply no_repeat_ngram_size={config.no_repeat_ngram_size}; "
            "bound it to 0 (--bound no_repeat_ngram_size=0:0)")
    sampling = config.do_sample
    return {
        "n": 1,
        "temperature": config.temperature if sampling else 0.0,  # 0 = greedy in vLLM
        "top_p": config.top_p if sampling else 1.0,
        "top_k": config.top_k if sampling and config.top_k > 0 else -1,  # -1 = off
        "repetition_penalty": config.repetition_penalty,  # same rule as transformers (prompt + output)
        "max_tokens": config.max_new_tokens,
        "seed": seed,
        "skip_special_tokens": True,
        # The chosen token's log-probability; vLLM's default logprobs_mode ("raw_logprobs") takes it
        # from the raw model output, before temperature, penalties and top-k/top-p, as fluency needs.
        "logprobs": 0,
    }


def completion_nll(completion, stop_ids: set[int] = frozenset()) -> float | None:
    """Mean raw NLL of a vLLM completion's tokens (a final stop token excluded); None if unavailable."""
    logprobs = getattr(completion, "logprobs", None)
    ids = list(completion.token_ids)
    if not logprobs or len(logprobs) != len(ids):
        return None
    if ids and ids[-1] in stop_ids:
        ids, logprobs = ids[:-1], logprobs[:-1]
    values = [step[token].logprob for token, step in zip(ids, logprobs) if step and token in step]
    return mean_nll(values) if len(values) == len(ids) else None


class VLLMEngine(ModelEngine):
    unsupported_knobs = ("no_repeat_ngram_size",)  # vLLM has no such sampling parameter

    def __init__(self, ref: ModelRef, cache: Cache | None = None, *, batch_size: int = 64, accelerator: str = "gpu",
                 devices: int = 1, precision: str = "32-true", dtype: str = "auto", **llm_kwargs):
        try:
            import vllm  # noqa: F401
        except ImportError as exc:
            raise SafetuneError("the vllm engine needs vLLM and a GPU: pip install vllm") from exc
        super().__init__(ref, cache, batch_size=batch_size, accelerator=accelerator, devices=devices,
                         precision=precision, dtype=dtype)
        from safetune.components.requests import load_tokenizer

        self.dtype = dtype  # vLLM resolves "auto" itself, from the model's config and the GPU
        self.tokenizer = load_tokenizer(ref.path)
        self.stop_ids = {i for i in (self.tokenizer.eos_token_id, self.tokenizer.pad_token_id) if i is not None}
        self.llm_kwargs = llm_kwargs
        self._llm = None

    def info(self) -> dict:
        return {**engine_info(self.ref, self.tokenizer.chat_template or "", self.dtype), "engine": "vllm"}

    def _dispatch(self, unique: list[GenerationRequest], deliver: Callable[[list[Generation]], None]) -> None:
        from vllm import LLM, SamplingParams

        if self._llm is None:  # weights load on the first miss, like the other engines
            self._llm = LLM(model=self.ref.path, tensor_parallel_size=self.devices, dtype=self.dtype,
                            **self.llm_kwargs)
        prompts = [render_chat(self.tokenizer, r.prompt, r.config.system_prompt_text, self.ref.chat_template_kwargs)
                   for r in unique]
        params = [SamplingParams(**sampling_params_kwargs(r.config, request_seed(r.seed, r.sample, r.prompt) % 2**31))
                  for r in unique]
        outputs = self._llm.generate(prompts, params, use_tqdm=False)
        answers = []
        for r, out in zip(unique, outputs):
            completion = out.outputs[0]
            answers.append(Generation(r.index, completion.text.strip(), len(out.prompt_token_ids),
                                      len(completion.token_ids), completion.finish_reason == "stop",
                                      completion_nll(completion, self.stop_ids)))
        deliver(answers)
