"""Experiment YAML files -> ``SearchConfig`` (CLI options override the file)."""

from __future__ import annotations

from pathlib import Path

import yaml

from safetune.config import DecodingConfig, GuardConfig, SearchConfig, SearchSpace
from safetune.errors import SafetuneError

_FIELDS = set(SearchConfig.__dataclass_fields__)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SafetuneError(f"experiment file {str(path)!r} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SafetuneError(f"experiment file {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise SafetuneError(f"experiment file {path} must hold a mapping of settings")
    return data


def parse_bound(text: str) -> tuple[str, list[float]]:
    try:
        knob, rng = text.split("=", 1)
        low, high = (float(v) for v in rng.split(":"))
    except ValueError as exc:
        raise SafetuneError(f"bad --bound {text!r}; expected KNOB=LOW:HIGH, e.g. temperature=0.2:1.0") from exc
    if knob not in SearchSpace.knobs():
        raise SafetuneError(f"unknown knob {knob!r} in --bound; knobs: {', '.join(SearchSpace.knobs())}")
    return knob, [low, high]


def build_search_config(path, overrides: dict, bounds=(), system_prompts=None, guard_overrides=None) -> SearchConfig:
    data = load_yaml(path) if path else {}
    unknown = set(data) - _FIELDS
    if unknown:
        raise SafetuneError(f"unknown setting(s) in {path}: {', '.join(sorted(unknown))}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    space = dict(data.pop("space", None) or {})
    for text in bounds:
        knob, rng = parse_bound(text)
        space[knob] = rng
    if system_prompts:
        space["system_prompts"] = list(system_prompts)
    data["space"] = SearchSpace.from_dict(space)
    guards = data.pop("guards", None) or {}
    if not isinstance(guards, dict):
        raise SafetuneError("guards must be a mapping of guard settings")
    guards.update({k: v for k, v in (guard_overrides or {}).items() if v is not None})
    data["guards"] = GuardConfig.from_dict(guards)
    if data.get("default_config") is not None:
        data["default_config"] = DecodingConfig.from_dict(data["default_config"])
    if data.get("include"):
        if not isinstance(data["include"], list) or not all(isinstance(c, dict) for c in data["include"]):
            raise SafetuneError("include must be a list of decoding configurations (mappings)")
        data["include"] = tuple(DecodingConfig.from_dict(c) for c in data["include"])
    for key in ("datasets", "hv_ref", "judges"):
        if key in data:
            value = data[key]
            data[key] = tuple(value.split(",")) if isinstance(value, str) else tuple(value)
    try:
        return SearchConfig(**data)
    except (TypeError, ValueError) as exc:  # e.g. unknown keyword, or pop_size: "abc" in the YAML
        raise SafetuneError(f"bad search settings: {exc}") from exc
