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
import dataclasses
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
        "generation/v3", info, c.system_prompt_text, c.generation_kwargs(),
        request.seed, request.sample, request.prompt,
    )


class DispatchingEngine(Engine):
    """Cache in this process, generation elsewhere: subclasses implement ``_dispatch``.

    Keeps the attributes the runner uses on every engine (``on_batch``, ``last_stats``, ``totals``).
    """

    def __init__(self, cache: Cache | None):
        self.cache = cache
        self.on_batch: Callable[[int], None] | None = None  # progress hook, set by the caller
        self.last_stats: dict = {"cached": 0, "generated": 0, "seconds": 0.0}
        self.totals = {"cached": 0, "generated": 0}

    @abc.abstractmethod
    def _dispatch(self, unique: list[GenerationRequest], deliver: Callable[[list[Generation]], None]) -> None:
        """Generate for ``unique`` (indices kept) and pass finished answers to ``deliver`` as they come."""

    def close(self) -> None:
        """Release workers; a no-op unless the backend keeps any."""

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        start = time.perf_counter()
        # Positions as indices, exactly as the single-process engine does: batch seeds derive from them.
        requests = [dataclasses.replace(r, index=i) for i, r in enumerate(requests)]
        info = self.info()
        keys = {r.index: generation_key(info, r) for r in requests}
        done: dict[int, Generation] = {}
        if self.cache is not None:
            hits = self.cache.get_many("generation", list(set(keys.values())))
            for r in requests:
                if keys[r.index] in hits:
                    done[r.index] = Generation(**{**hits[keys[r.index]], "index": r.index})
        todo = [r for r in requests if r.index not in done]
        unique: dict[str, GenerationRequest] = {}
        for r in todo:
            unique.setdefault(keys[r.index], r)  # identical requests are generated once
        cached = len(requests) - len(todo)
        if cached and self.on_batch:
            self.on_batch(cached)
        if unique:
            answers = self._collect(list(unique.values()), keys)
            for r in todo:
                g = answers[unique[keys[r.index]].index]
                done[r.index] = dataclasses.replace(g, index=r.index)
        self.last_stats = {"cached": cached, "generated": len(unique), "seconds": time.perf_counter() - start}
        self.totals["cached"] += cached
        self.totals["generated"] += len(unique)
        return [done[i] for i in range(len(requests))]

    def _collect(self, unique: list[GenerationRequest], keys: dict[int, str]) -> dict[int, Generation]:
        expected = {r.index for r in unique}
        answers: dict[int, Generation] = {}

        def deliver(batch: list[Generation]) -> None:
            for g in batch:
                if g.index not in expected:
                    raise SafetuneError(f"a worker answered request {g.index}, which it was not given")
                if g.index in answers:
                    raise SafetuneError(f"request {g.index} was answered twice")
                answers[g.index] = g
            if self.cache is not None:
                self.cache.put_many("generation", {keys[g.index]: g.__dict__ for g in batch})
            if self.on_batch:
                self.on_batch(len(batch))

        self._dispatch(unique, deliver)
        missing = sorted(expected - set(answers))
        if missing:
            raise SafetuneError(f"{len(missing)} request(s) got no answer (first: {missing[0]})")
        return answers



class TransformersEngine(DispatchingEngine):
    """In-process generation: ``GenerationModule`` under ``Trainer.predict``, each finished batch delivered
    (cached, counted) by a prediction writer as soon as it is done."""

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
        super().__init__(cache)
        self.ref = ref
        self.batch_size = batch_size
        self.trainer_kwargs = dict(accelerator=accelerator, devices=devices, precision=precision)
        self.dtype = resolve_dtype(dtype, accelerator)
        self._tokenizer = None  # loaded on the first cache miss, like the model
        self._info = engine_info(ref, chat_template_source(ref.path), self.dtype)
        self._module = None  # GenerationModule, loaded on the first cache miss

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

    def _dispatch(self, unique: list[GenerationRequest], deliver: Callable[[list[Generation]], None]) -> None:
        import lightning as L

        from safetune.components import predict, quiet_lightning
        from safetune.components.datamodule import PromptDataModule
        from safetune.components.engines.writer import DeliveringWriter

        quiet_lightning()
        trainer = L.Trainer(
            **self.trainer_kwargs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[DeliveringWriter(deliver)],
        )
        batches = predict(trainer, self.module, datamodule=PromptDataModule(unique, self.batch_size),
                                  return_predictions=True)
        if batches is None:
            raise SafetuneError("generation returned nothing (multi-device predict must run in a subprocess)")


_ENGINES = {
    "transformers": "safetune.components.engines.transformers:TransformersEngine",
    "multidevice": "safetune.components.engines.multidevice:MultiDeviceEngine",  # Lightning DDP in a child process
    "ray": "safetune.components.engines.ray:RayEngine",  # Ray actors, one model copy each
    "vllm": "safetune.components.engines.vllm:VLLMEngine",  # GPUs: per-request sampling parameters
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
