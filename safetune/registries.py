"""String-keyed registries: a name -> where to find it, imported on first use.

Engines, judges, search algorithms, capability tasks and prompt sets are each chosen by name (on the
command line, in an experiment YAML). Their registries live beside them (``components/engines``,
``components/judges``, ``search``, ``datasets``) and all are this one class, so every list of names a
user sees (CLI choices, help, error messages) comes from the registry itself, never from a copy.

A target is either an object, or a ``"module:attribute"`` string imported only when the name is
first used: listing the engines must not import torch (about 5 s here), and a search answered from
the cache never imports any engine's module at all.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from safetune.errors import SafetuneError


@dataclass(frozen=True)
class Entry:
    target: Any  # "module:attribute", or the object itself
    help: str = ""  # one line for CLI help and listings


class Registry:
    def __init__(self, kind: str, entries: dict[str, Entry | str] | None = None, plural: str | None = None):
        self.kind = kind  # "engine", "judge"...: used in messages
        self.plural = plural or kind + "s"
        self._entries: dict[str, Entry] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    def register(self, name: str, target: Any, help: str = "") -> None:
        """Add or replace ``name``; ``target`` may be an ``Entry``, a "module:attribute" string or an object."""
        self._entries[name] = target if isinstance(target, Entry) else Entry(target, help)

    def unregister(self, name: str) -> None:
        """Remove ``name`` if registered (a plugin or a test taking back what it added)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def help(self, name: str) -> str:
        self.check(name)
        return self._entries[name].help

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.names())

    def check(self, name: str) -> None:
        """A one-line ``SafetuneError`` for an unknown name, without importing anything."""
        if name not in self._entries:
            raise SafetuneError(f"unknown {self.kind} {name!r}; known {self.plural}: {', '.join(self.names())}")

    def load(self, name: str) -> Any:
        """The registered object (a class, a function...), imported now if it was given as a string."""
        self.check(name)
        target = self._entries[name].target
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            return getattr(importlib.import_module(module_name), attr)
        return target

    def describe(self) -> str:
        """"a (what a is), b (what b is)": every name with its help, for CLI help texts."""
        return ", ".join(f"{n} ({e.help})" if e.help else n for n, e in self._entries.items())
