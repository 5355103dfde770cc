"""Command-line options built from the config dataclasses: one declaration per setting.

``ConfigOptions(SearchConfig, [...])`` adds a click option per named field: ``--n-prompts`` from
``n_prompts`` (or the field's ``metadata["flag"]``), the type from the annotation, the help from
``metadata["help"]``, choices (and their descriptions) from a registry. ``values(kwargs)`` takes
this group's values back out of a command's keyword arguments, comma lists split, as overrides for
the config. With ``defaults=False`` every option defaults to None ("not given": the experiment
YAML or the dataclass decides); with ``defaults=True`` it shows and uses the dataclass default.
"""

from __future__ import annotations

import dataclasses
import types
import typing

import click

from safetune.config import split_list
from safetune.registries import Registry


def _base_type(annotation):
    """``int | None`` -> int; ``tuple[str, ...]`` -> tuple; else the annotation itself."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    return typing.get_origin(annotation) or annotation


class ConfigOptions:
    def __init__(self, cls, names: list[str], *, defaults: bool = False, prefix: str = "",
                 choices: dict[str, Registry | tuple[str, ...]] | None = None,
                 help: dict[str, str] | None = None):
        self.cls, self.names, self.defaults, self.prefix = cls, list(names), defaults, prefix
        self.choices, self.help_overrides = dict(choices or {}), dict(help or {})
        self.fields = {f.name: f for f in dataclasses.fields(cls)}
        self.types = typing.get_type_hints(cls)
        missing = [n for n in self.names if "help" not in self.fields[n].metadata]
        if missing:  # a setting without help text is not meant for the command line
            raise ValueError(f"{cls.__name__} fields without help metadata: {', '.join(missing)}")

    def flag(self, name: str) -> str:
        return self.fields[name].metadata.get("flag") or "--" + name.replace("_", "-")

    def _help(self, name: str) -> str:
        text = self.help_overrides.get(name) or self.fields[name].metadata["help"]
        choice = self.choices.get(name)
        if isinstance(choice, Registry):
            text += " One of: " + choice.describe() + "."
        return text

    def _option(self, name: str):
        f, kind = self.fields[name], _base_type(self.types[name])
        flag, param = self.flag(name), self.prefix + name
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs = {"help": self._help(name), "default": default if self.defaults else None,
                  "show_default": self.defaults}
        if kind is tuple:  # comma-separated on the command line
            metavar = "A,B,..."
            if self.defaults:
                kwargs["default"] = ",".join(default) or None
            return click.option(flag, param, type=str, metavar=metavar, **kwargs)
        if kind is bool:
            return click.option(f"{flag}/--no-{flag[2:]}", param, **kwargs)
        decls = [flag, *([f.metadata["short"]] if "short" in f.metadata else []), param]
        choice = self.choices.get(name)
        if choice is not None:
            names = choice.names() if isinstance(choice, Registry) else list(choice)
            return click.option(*decls, type=click.Choice(names), **kwargs)
        return click.option(*decls, type=kind if kind in (int, float) else str, **kwargs)

    def __call__(self, fn):
        for name in reversed(self.names):
            fn = self._option(name)(fn)
        return fn

    def values(self, kwargs: dict) -> dict:
        """This group's values, popped from ``kwargs``: field name -> value (None: not given)."""
        out = {}
        for name in self.names:
            value = kwargs.pop(self.prefix + name)
            if value is not None and _base_type(self.types[name]) is tuple:
                value = split_list(value, self.flag(name))
            out[name] = value
        return out
