"""Batched, chat-templated generation as a Lightning module.

One ``predict_step`` call generates for a batch of ``GenerationRequest``s that may come from
different candidates: each row keeps its own system prompt and decoding knobs (``PerRowDecoding``),
so a whole population shares large batches. Left padding makes every row's prompt end where
generation starts. A batch that does not fit in memory is split in halves and retried.
"""

from __future__ import annotations

import lightning as L
import torch

from safetune.components.requests import (  # noqa: F401 - re-exported: the light half of this module
    DTYPES,
    Generation,
    GenerationRequest,
    cpu_has_native_bf16,
    load_tokenizer,
    render_chat,
    resolve_dtype,
)
from safetune.components.sampling import PerRowDecoding
from safetune.config import DecodingConfig


def load_model(path: str, dtype: str = "float32"):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.eval()
    return model


def load_causal_lm(path: str, dtype: str = "float32"):
    """Tokenizer (left padding, a pad token) and model in eval mode."""
    return load_tokenizer(path), load_model(path, dtype)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


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
        try:
            return self._generate(batch)
        except Exception as exc:  # the largest batch that fits: halve and retry on out-of-memory
            if not is_out_of_memory(exc) or len(batch) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(batch) // 2
            return self.predict_step(batch[:half]) + self.predict_step(batch[half:])

    def _generate(self, batch: list[GenerationRequest]) -> list[Generation]:
        from transformers import GenerationConfig, LogitsProcessorList

        texts = [render_chat(self.tokenizer, r.prompt, r.config.system_prompt_text, self.template_kwargs) for r in batch]
        # The chat template already holds the special tokens; do not add a second BOS.
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        width = enc["input_ids"].shape[1]
        limits = [r.config.max_new_tokens for r in batch]
        decoding = PerRowDecoding(
            [r.config for r in batch], [r.rng_seed for r in batch], width,
            pad_lengths=(enc["attention_mask"] != 0).int().argmax(dim=1), stop_id=self.stop_ids[0],
        )
        # generate() only takes the token PerRowDecoding chose for each row (greedy over its output).
        gc = GenerationConfig(
            do_sample=False, max_new_tokens=max(limits), pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.stop_ids, bos_token_id=self.tokenizer.bos_token_id,
        )
        with torch.inference_mode():
            out = self.model.generate(**enc, generation_config=gc, logits_processor=LogitsProcessorList([decoding]))
        new = out[:, width:]
        results = []
        for row, request in enumerate(batch):
            ids = new[row].tolist()[: limits[row]]
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
