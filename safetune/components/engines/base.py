"""The engine interface, and the cache-in-this-process half every engine here shares.

An ``Engine`` turns generation requests into responses. Callers use exactly this:

* ``generate(requests)``: one ``Generation`` per request, in the requests' order;
* ``info()``: what identifies the engine's outputs (model, revision, chat template, dtype), part of
  every cache key, computed without loading the model;
* ``close()``: release workers or processes (nothing for an in-process engine);
* ``on_batch``: a progress callback the caller may set, called with the number of answers that
  just finished (cache hits included);
* ``totals``: answers generated and answers taken from the cache since the engine was made;
* ``dtype``: the weights' dtype the engine resolved ("auto" is never left unresolved, except by
  an engine that resolves it itself, such as vLLM).

``DispatchingEngine`` implements ``generate`` for every engine in this package: it consults the
cache, generates each distinct request once through a backend (``_dispatch``), stores each
finished batch in the cache at once (a crash loses at most the batch in flight) and checks that
every request was answered exactly once. ``ModelEngine`` adds the settings every model-backed
engine takes.
"""

from __future__ import annotations

# torch and Lightning are imported where generation happens, not here: a search whose answers are
# all cached never needs them (see safetune/components/requests.py).

import abc
import dataclasses
import hashlib
import time
from typing import Callable

from safetune.cache import Cache, make_key
from safetune.components.requests import Generation, GenerationRequest, resolve_dtype
from safetune.errors import SafetuneError
from safetune.models import ModelRef


class Engine(abc.ABC):
    dtype: str = "float32"
    # Decoding knobs the engine cannot apply: a search on it must bound them to 0 (checked before it runs).
    unsupported_knobs: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.on_batch: Callable[[int], None] | None = None  # progress hook, set by the caller
        self.totals = {"cached": 0, "generated": 0}
        self.last_stats: dict = {"cached": 0, "generated": 0, "seconds": 0.0}  # of the last generate()

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
    its batch, device or worker, so none of those belong in the key. Exactly so in float32; in
    bfloat16 a batch's shape changes the matmuls' rounding, and a sampled answer drifts once a draw
    lands on the other side of a boundary (SmolLM2-135M on an AVX512-BF16 CPU, 128 search requests
    of 8 candidates: 32 identical between batches of 64 and 24), so there a cached answer is one
    draw from the same distribution rather than the bit-identical one.
    """
    c = request.config
    return make_key(
        "generation/v3", info, c.system_prompt_text, c.generation_kwargs(),
        request.seed, request.sample, request.prompt,
    )


class DispatchingEngine(Engine):
    """Cache in this process, generation elsewhere: subclasses implement ``_dispatch``."""

    def __init__(self, cache: Cache | None):
        super().__init__()
        self.cache = cache

    @abc.abstractmethod
    def _dispatch(self, unique: list[GenerationRequest], deliver: Callable[[list[Generation]], None]) -> None:
        """Generate for ``unique`` (indices kept) and pass finished answers to ``deliver`` as they come."""

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


class ModelEngine(DispatchingEngine):
    """A dispatching engine for one model, with the settings every such engine takes.

    The weights' dtype is resolved here, once, in the calling process: every rank, actor or worker
    must use the same one (it is part of every cache key).
    """

    def __init__(self, ref: ModelRef, cache: Cache | None = None, batch_size: int = 16, accelerator: str = "cpu",
                 devices: int = 1, precision: str = "32-true", dtype: str = "auto"):
        super().__init__(cache)
        if batch_size < 1:
            raise SafetuneError(f"batch_size must be >= 1 (got {batch_size})")
        self.ref, self.batch_size = ref, batch_size
        self.accelerator, self.devices, self.precision = accelerator, devices, precision
        self.dtype = resolve_dtype(dtype, accelerator)
