"""Engines by name (``--engine``, ``engine:`` in an experiment YAML), imported on first use."""

from __future__ import annotations

from safetune.components.engines.base import Engine
from safetune.registries import Entry, Registry

ENGINES = Registry("engine", {
    "transformers": Entry("safetune.components.engines.transformers:TransformersEngine",
                          "the default; devices > 1 runs Lightning DDP in a child process"),
    "multidevice": Entry("safetune.components.engines.multidevice:MultiDeviceEngine",
                         "Lightning DDP in a child process; what transformers with devices > 1 uses"),
    "ray": Entry("safetune.components.engines.ray:RayEngine", "Ray actors, one model copy each"),
    "vllm": Entry("safetune.components.engines.vllm:VLLMEngine", "GPUs: per-request sampling parameters"),
})


def engine_names() -> list[str]:
    return sorted(ENGINES.names())


def get_engine(name: str, **kwargs) -> Engine:
    ENGINES.check(name)
    # Lightning's DDP re-runs the calling script once per device: several devices need a child process.
    if name == "transformers" and kwargs.get("devices", 1) > 1:
        name = "multidevice"
    return ENGINES.load(name)(**kwargs)
