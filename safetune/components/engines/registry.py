"""Engines by name (``--engine``, ``engine:`` in an experiment YAML), imported on first use."""

from __future__ import annotations

from safetune.components.engines.base import Engine
from safetune.registries import Entry, Registry

ENGINES = Registry("engine", {
    "transformers": Entry("safetune.components.engines.transformers:TransformersEngine",
                          "the default; --devices > 1 runs Lightning DDP in a child process"),
    "ray": Entry("safetune.components.engines.ray:RayEngine", "Ray actors, one model copy each"),
    "vllm": Entry("safetune.components.engines.vllm:VLLMEngine", "GPUs: per-request sampling parameters"),
})
# What "transformers" runs on several devices: Lightning's DDP re-runs the calling script once per
# device, so it cannot run inside a search process (see multidevice.py). Not a name users choose.
MULTIDEVICE = Registry("engine", {"multidevice": "safetune.components.engines.multidevice:MultiDeviceEngine"})


def engine_names() -> list[str]:
    return sorted(ENGINES.names())


def get_engine(name: str, **kwargs) -> Engine:
    ENGINES.check(name)
    if name == "transformers" and kwargs.get("devices", 1) > 1:
        return MULTIDEVICE.load("multidevice")(**kwargs)
    return ENGINES.load(name)(**kwargs)
