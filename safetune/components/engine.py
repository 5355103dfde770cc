"""Engines: what turns generation requests into responses, behind a two-method interface.

``TransformersEngine`` runs ``GenerationModule`` under a Lightning ``Trainer.predict`` (devices,
accelerator and precision are configuration), skipping requests whose answer is cached, and a
prediction writer stores every finished batch in the cache at once: a crash loses at most the
batch in flight.
"""

from __future__ import annotations

# torch and Lightning are imported where generation happens, not here: a search whose answers are
# all cached never needs them (see safetune/components/requests.py).

import abc
import hashlib
import importlib
import logging
import time
from typing import Callable

from safetune.cache import Cache, make_key
from safetune.components.requests import (
    Generation,
    GenerationRequest,
    chat_template_source,
    load_tokenizer,
    resolve_dtype,
)
from safetune.errors import SafetuneError
from safetune.models import ModelRef

log = logging.getLogger(__name__)


class Engine(abc.ABC):
    @abc.abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        """One response per request, in the requests' order."""

    @abc.abstractmethod
    def info(self) -> dict:
        """What identifies this engine's outputs (model id, revision, template...)."""

    def close(self) -> None:
        """Release the workers or processes this engine holds (nothing for an in-process engine)."""


def engine_info(ref: ModelRef, chat_template: str | None, dtype: str) -> dict:
    """What identifies an engine's outputs: model, revision, chat template and the weights' dtype."""
    return {
        "engine": "transformers",
        "model_id": ref.model_id,
        "revision": ref.revision,
        "chat_template": hashlib.sha256((chat_template or "").encode()).hexdigest()[:16],
        "chat_template_kwargs": ref.chat_template_kwargs,
        "dtype": dtype,
    }


def generation_key(info: dict, request: GenerationRequest) -> str:
    """Cache key of one generation: everything that can change the response, and nothing else.

    Computed without the model (``info`` names model, revision and chat template, which fix the
    pad/stop tokens), so every engine shares entries and a fully cached search never loads weights.
    A response depends only on its own request (per-row decoding, request-seeded sampling), never on
    its batch, device or worker, so none of those belong in the key.
    """
    c = request.config
    return make_key(
        "generation/v2", info, c.system_prompt_text, c.generation_kwargs(),
        request.seed, request.sample, request.prompt,
    )


class TransformersEngine(Engine):
    def __init__(
        self,
        ref: ModelRef,
        cache: Cache | None = None,
        batch_size: int = 16,
        accelerator: str = "cpu",
        devices: int = 1,
        precision: str = "32-true",
        dtype: str = "auto",
    ):
        self.ref = ref
        self.cache = cache
        self.batch_size = batch_size
        self.trainer_kwargs = dict(accelerator=accelerator, devices=devices, precision=precision)
        self.dtype = resolve_dtype(dtype, accelerator)
        self._tokenizer = None  # loaded on the first cache miss, like the model
        self._info = engine_info(ref, chat_template_source(ref.path), self.dtype)
        self._module = None  # GenerationModule, loaded on the first cache miss
        self.on_batch: Callable[[int], None] | None = None  # progress hook, set by the caller
        self.last_stats = {"cached": 0, "generated": 0, "seconds": 0.0}
        self.totals = {"cached": 0, "generated": 0}  # over this engine's life, for run metrics

    @property
    def module(self):
        """The GenerationModule, loaded when first needed: a search answered from the cache never loads it."""
        if self._module is None:
            from safetune.components.generation import GenerationModule, load_model

            self._module = GenerationModule(load_model(self.ref.path, self.dtype), self.tokenizer,
                                            self.ref.chat_template_kwargs)
        return self._module

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.ref.path)
        return self._tokenizer

    def info(self) -> dict:
        return dict(self._info)

    def key(self, request: GenerationRequest) -> str:
        return generation_key(self.info(), request)

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        start = time.perf_counter()
        # Re-index so results come back in the caller's order whatever the batching does.
        requests = [GenerationRequest(i, r.prompt, r.config, r.seed, r.sample) for i, r in enumerate(requests)]
        keys = {r.index: self.key(r) for r in requests}
        done: dict[int, Generation] = {}
        if self.cache is not None:
            hits = self.cache.get_many("generation", list(set(keys.values())))
            for r in requests:
                if keys[r.index] in hits:
                    done[r.index] = Generation(**{**hits[keys[r.index]], "index": r.index})
        todo = [r for r in requests if r.index not in done]
        # Identical requests (same key) are generated once.
        unique: dict[str, GenerationRequest] = {}
        for r in todo:
            unique.setdefault(keys[r.index], r)
        cached = len(requests) - len(todo)
        if cached and self.on_batch:
            self.on_batch(cached)
        if unique:
            import lightning as L

            from safetune.components import quiet_lightning
            from safetune.components.datamodule import PromptDataModule
            from safetune.components.writer import CacheWriter

            quiet_lightning()
            writer = CacheWriter(self.cache, keys, self.on_batch)
            trainer = L.Trainer(
                **self.trainer_kwargs,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                callbacks=[writer],
            )
            batches = trainer.predict(
                self.module, datamodule=PromptDataModule(list(unique.values()), self.batch_size)
            )
            if batches is None:
                raise SafetuneError("generation returned nothing (multi-device predict must run in a subprocess)")
            by_key = {keys[g.index]: g for batch in batches for g in batch}
            for r in todo:
                g = by_key[keys[r.index]]
                done[r.index] = Generation(r.index, g.response, g.prompt_tokens, g.new_tokens, g.finished)
        self.last_stats = {
            "cached": cached,
            "generated": len(unique),
            "seconds": time.perf_counter() - start,
        }
        self.totals["cached"] += cached
        self.totals["generated"] += len(unique)
        return [done[i] for i in range(len(requests))]


_ENGINES = {
    "transformers": "safetune.components.engine:TransformersEngine",
    "multidevice": "safetune.components.multidevice:MultiDeviceEngine",  # Lightning DDP in a child process
    "ray": "safetune.components.ray_engine:RayEngine",  # Ray actors, one model copy each
    "vllm": "safetune.components.vllm_engine:VLLMEngine",  # GPUs: per-request sampling parameters
}


def engine_names() -> list[str]:
    return sorted(_ENGINES)


def get_engine(name: str, **kwargs) -> Engine:
    if name not in _ENGINES:
        raise SafetuneError(f"unknown engine {name!r}; known engines: {', '.join(engine_names())}")
    # Lightning's DDP re-runs the calling script once per device: several devices need a child process.
    if name == "transformers" and kwargs.get("devices", 1) > 1:
        name = "multidevice"
    module_name, attr = _ENGINES[name].split(":")
    return getattr(importlib.import_module(module_name), attr)(**kwargs)
