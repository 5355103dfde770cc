"""Batched, chat-templated generation as a Lightning module.

One ``predict_step`` call generates for a batch of ``GenerationRequest``s that share one decoding
configuration (the DataModule's batch sampler guarantees it), with left padding so every row's
prompt ends where generation starts. The effective ``GenerationConfig`` is built here from the
candidate alone and checked before ``generate`` so that no knob is silently dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import lightning as L
import torch

from safetune.config import DecodingConfig


@dataclass(frozen=True)
class GenerationRequest:
    index: int  # position in the caller's list, to reassemble results
    prompt: str
    config: DecodingConfig
    seed: int
    sample: int  # sample index: a different sample is a different draw

    @property
    def group(self) -> tuple:
        """Requests in one batch must share this (one GenerationConfig and one RNG stream)."""
        return (self.config, self.seed, self.sample)


@dataclass
class Generation:
    index: int
    response: str
    prompt_tokens: int
    new_tokens: int
    finished: bool  # stopped on an end-of-sequence token rather than the length limit


def load_causal_lm(path: str, dtype: str = "float32"):
    """Tokenizer (left padding, a pad token) and model in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # decoder-only batched generation needs left padding
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.eval()
    return tokenizer, model


def render_chat(tokenizer, prompt: str, system_prompt: str | None, template_kwargs: dict) -> str:
    """The exact text the model sees: chat template with an optional system message."""
    messages = []
    if system_prompt is not None:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": prompt})
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **template_kwargs
    )


def batch_seed(requests: list[GenerationRequest]) -> int:
    """A seed derived from the batch's group, so reruns of the same batch draw the same tokens."""
    first = requests[0]
    text = f"{first.config.digest()}|{first.seed}|{first.sample}|{first.index}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


class GenerationModule(L.LightningModule):
    def __init__(self, model, tokenizer, template_kwargs: dict | None = None):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.template_kwargs = dict(template_kwargs or {})
        # Nothing from the model's own generation_config.json may leak into a candidate's decoding:
        # each candidate's GenerationConfig is complete, and the model's default becomes neutral.
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig(
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        # Chat models end a turn with a special token that may differ from the tokenizer's eos.
        self.stop_ids = sorted(
            {
                i
                for i in (
                    tokenizer.eos_token_id,
                    tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None,
                    tokenizer.convert_tokens_to_ids("<|eot_id|>") if "<|eot_id|>" in tokenizer.get_vocab() else None,
                )
                if i is not None
            }
        )

    def generation_config(self, config: DecodingConfig):
        from transformers import GenerationConfig

        kwargs = config.generation_kwargs()
        gc = GenerationConfig(
            **kwargs,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.stop_ids,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        # The check lm-evaluation-harness learned the hard way (PR #1800): every requested knob
        # must be present, unchanged, in the config that goes to generate().
        for key, value in kwargs.items():
            if getattr(gc, key) != value:
                raise RuntimeError(f"generation config dropped {key}={value!r} (got {getattr(gc, key)!r})")
        gc.validate(strict=True)
        return gc

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # Batches are plain request objects; tensors are made on the model's device in predict_step.
        return batch

    def predict_step(self, batch: list[GenerationRequest], batch_idx: int = 0, dataloader_idx: int = 0):
        config = batch[0].config
        if any(r.group != batch[0].group for r in batch):
            raise ValueError("a generation batch must share one decoding configuration, seed and sample")
        texts = [render_chat(self.tokenizer, r.prompt, config.system_prompt_text, self.template_kwargs) for r in batch]
        # The chat template already holds the special tokens; do not add a second BOS.
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        gc = self.generation_config(config)
        torch.manual_seed(batch_seed(batch))
        with torch.inference_mode():
            out = self.model.generate(**enc, generation_config=gc)
        new = out[:, enc["input_ids"].shape[1]:]
        results = []
        for row, request in enumerate(batch):
            ids = new[row].tolist()
            finished = False
            n_new = len(ids)
            for pos, token in enumerate(ids):
                if token in self.stop_ids:
                    n_new, finished = pos, True
                    break
            text = self.tokenizer.decode(ids[:n_new], skip_special_tokens=True).strip()
            results.append(
                Generation(
                    index=request.index,
                    response=text,
                    prompt_tokens=int(enc["attention_mask"][row].sum()),
                    new_tokens=n_new,
                    finished=finished,
                )
            )
        return results
