"""Generation across machines: long-lived Ray actors, each with its own single-process engine.

The driver (the search process) keeps the cache: it answers what it can, splits the rest into
contiguous slices of whole decoding configurations (a candidate's requests stay on one actor),
sends the slices to the actors in parallel and writes each slice to the cache as it returns, then
puts everything back in the caller's order. Actors hold a ``TransformersEngine`` with no cache and
are created on the first call that needs them (a fully cached search never starts one).

``ray.init(address=None)`` starts a local cluster with ``num_cpus``; an address joins an existing
one, whose nodes need this package and the model folder at the same path. ``close()`` ends the
actors, and Ray itself if this engine started it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from safetune.errors import SafetuneError

try:
    import ray
except ImportError as exc:  # an optional extra: say how to get it instead of a traceback
    raise SafetuneError("the ray engine needs the ray package: pip install 'safetune[ray]'") from exc

from safetune.cache import Cache
from safetune.components.engines.base import ModelEngine
from safetune.components.engines.multidevice import split_by_config, tokenizer_info
from safetune.components.requests import Generation, GenerationRequest
from safetune.models import ModelRef


@dataclass(frozen=True)
class RayConfig:
    """Where the actors run and what each one gets."""

    address: str | None = None  # None: a local cluster started (and shut down) by the engine
    workers: int = 2  # actors, each with its own copy of the model
    num_cpus: int | None = None  # local cluster size; None = `workers` x `cpus_per_worker`
    cpus_per_worker: int = 1  # Ray resource per actor, also its torch thread count on CPU
    gpus_per_worker: float = 0.0  # > 0 for accelerator="gpu"/"cuda"
    include_dashboard: bool = False
    log_to_driver: bool = False  # actor errors still come back as exceptions

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SafetuneError(f"ray workers must be >= 1 (got {self.workers})")
        if self.cpus_per_worker < 1:
            raise SafetuneError(f"ray cpus_per_worker must be >= 1 (got {self.cpus_per_worker})")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise SafetuneError(f"ray num_cpus must be >= 1 (got {self.num_cpus})")

    def init_kwargs(self) -> dict:
        kwargs = dict(address=self.address, include_dashboard=self.include_dashboard, log_to_driver=self.log_to_driver)
        if self.address is None:  # a cluster's size is the cluster's business
            kwargs["num_cpus"] = self.num_cpus or self.workers * self.cpus_per_worker
        return kwargs


class GenerationActor:
    """One model copy in one Ray worker process; counts its work so tests can see who did what."""

    def __init__(self, ref: dict, batch_size: int, accelerator: str, precision: str, dtype: str, threads: int):
        import torch

        from safetune.components.engines.registry import get_engine

        if accelerator == "cpu":
            torch.set_num_threads(threads)
        # devices=1 and no cache: the driver owns the cache, and each actor is one device.
        self.engine = get_engine("transformers", ref=ModelRef(**ref), cache=None, batch_size=batch_size,
                                 accelerator=accelerator, devices=1, precision=precision, dtype=dtype)
        self.calls = 0
        self.answered = 0

    def info(self) -> dict:
        return self.engine.info()

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        self.calls += 1
        self.answered += len(requests)
        # The engine answers by position in this slice; restore the driver's indices.
        return [Generation(r.index, g.response, g.prompt_tokens, g.new_tokens, g.finished, g.nll)
                for r, g in zip(requests, self.engine.generate(requests))]

    def stats(self) -> dict:
        return {"calls": self.calls, "answered": self.answered}


def _one_line(exc: BaseException) -> str:
    """The root cause of a Ray error as one line (Ray wraps it with the remote traceback)."""
    cause = getattr(exc, "cause", None) or exc
    lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else '(no message)'}"


class RayEngine(ModelEngine):
    def __init__(self, ref: ModelRef, cache: Cache | None = None, *, address: str | None = None, workers: int = 2,
                 num_cpus: int | None = None, ray_config: RayConfig | None = None, **settings):
        super().__init__(ref, cache, **settings)
        if self.devices != 1:
            raise SafetuneError(f"the ray engine runs one device per actor (got devices={self.devices}); "
                                "scale with ray_workers")
        self.config = ray_config or RayConfig(address=address, workers=workers, num_cpus=num_cpus)
        # The dtype was resolved on the driver: actors on other machines must not pick their own (keys would differ).
        self.actor_args = (ref.to_dict(), self.batch_size, self.accelerator, self.precision, self.dtype,
                           self.config.cpus_per_worker)
        self.actors: list = []
        self._started_ray = False
        self._info: dict | None = None

    def info(self) -> dict:
        # From the tokenizer, not an actor: looking up cached candidates must not start the cluster.
        if self._info is None:
            self._info = tokenizer_info(self.ref, self.dtype)
        return dict(self._info)

    def _ensure_actors(self) -> list:
        if self.actors:
            return self.actors
        if not ray.is_initialized():
            try:
                ray.init(**self.config.init_kwargs())
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise SafetuneError(f"cannot start or join Ray at {self.config.address or 'local'}: "
                                    f"{_one_line(exc)}") from exc
            self._started_ray = True
        remote = ray.remote(num_cpus=self.config.cpus_per_worker, num_gpus=self.config.gpus_per_worker)(GenerationActor)
        self.actors = [remote.remote(*self.actor_args) for _ in range(self.config.workers)]
        return self.actors

    def _dispatch(self, unique: list[GenerationRequest], deliver: Callable[[list[Generation]], None]) -> None:
        actors = self._ensure_actors()
        slices = split_by_config(unique, len(actors))
        pending = [actor.generate.remote(part) for actor, part in zip(actors, slices)]
        failure: ray.exceptions.RayError | None = None
        while pending:  # cache each slice as soon as it is back; a failed slice spoils no other
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                deliver(ray.get(ready[0]))
            except ray.exceptions.RayError as exc:
                failure = failure or exc
        if failure is not None:
            raise SafetuneError(f"ray generation failed: {_one_line(failure)}") from failure

    def actor_stats(self) -> list[dict]:
        return ray.get([a.stats.remote() for a in self.actors]) if self.actors else []

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False
