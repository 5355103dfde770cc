"""Engines: what turns generation requests into responses, one file per engine behind ``base.Engine``.

``get_engine(name, ...)`` builds one from the registry; nothing here imports torch or Lightning
until an engine generates (a search answered from the cache never does).
"""

from safetune.components.engines.base import Engine
from safetune.components.engines.registry import ENGINES, engine_names, get_engine

__all__ = ["ENGINES", "Engine", "engine_names", "get_engine"]
