"""Prompt sets: the bundled ones by name (a registry), or a user's CSV/JSONL file by path."""

from __future__ import annotations

import csv
import functools
import os
from pathlib import Path
from typing import Iterable, Iterator

from safetune.datasets.items import PromptItem, PromptSet
from safetune.datasets.reader import bundled_csv_rows, csv_records, jsonl_objects
from safetune.errors import SafetuneError
from safetune.registries import Entry, Registry

HARMBENCH_CONTEXT_SEP = "\n\n---\n\n"  # HarmBench's own separator between context and request


def _harmbench(kinds: tuple[str, ...]) -> list[PromptItem]:
    items = []
    for r in bundled_csv_rows("harmbench_behaviors_text_all.csv"):
        if r["FunctionalCategory"] not in kinds:  # copyright behaviours are never loaded
            continue
        # Contextual behaviours are meaningless without their context, so it is part of the prompt.
        ctx = r["ContextString"].strip()
        prompt = ctx + HARMBENCH_CONTEXT_SEP + r["Behavior"] if ctx else r["Behavior"]
        items.append(PromptItem(f"harmbench/{r['BehaviorID']}", prompt, r["SemanticCategory"], "harmbench", True))
    return items


def _advbench() -> list[PromptItem]:
    return [
        PromptItem(f"advbench/{r['BehaviorID']}", r["Behavior"], "unspecified", "advbench", True)
        for r in bundled_csv_rows("advbench_behaviors.csv")
    ]


def _strongreject() -> list[PromptItem]:
    # The CSV has no id column; the row number is stable because the bundled file never changes.
    return [
        PromptItem(f"strongreject/{i}", r["forbidden_prompt"], r["category"], "strongreject", True)
        for i, r in enumerate(bundled_csv_rows("strongreject_dataset.csv"))
    ]


def _xstest(harmful: bool) -> list[PromptItem]:
    # Unsafe XSTest prompts are exactly the contrast_* types; label is checked too as a guard.
    rows = bundled_csv_rows("xstest_prompts.csv")
    return [
        PromptItem(f"xstest/{r['id']}", r["prompt"], r["type"], "xstest", harmful)
        for r in rows
        if r["type"].startswith("contrast_") == harmful and (r["label"] == "unsafe") == harmful
    ]


DATASETS = Registry("dataset", {
    "harmbench": Entry(lambda: _harmbench(("standard", "contextual")), "HarmBench standard + contextual behaviours"),
    "harmbench-standard": Entry(lambda: _harmbench(("standard",)), "HarmBench standard behaviours"),
    "harmbench-contextual": Entry(lambda: _harmbench(("contextual",)), "HarmBench behaviours with a context"),
    "strongreject": Entry(_strongreject, "StrongREJECT forbidden prompts"),
    "advbench": Entry(_advbench, "AdvBench harmful behaviours"),
    "xstest-safe": Entry(lambda: _xstest(False), "XSTest safe prompts (over-refusal probes)"),
    "xstest-unsafe": Entry(lambda: _xstest(True), "XSTest unsafe contrast prompts"),
})


def dataset_names() -> list[str]:
    return DATASETS.names()


@functools.lru_cache(maxsize=None)
def _load_builtin(name: str) -> PromptSet:
    return PromptSet(name, tuple(DATASETS.load(name)()))


# ---- user files -------------------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "y", "harmful", "unsafe"}
_FALSE = {"false", "0", "no", "n", "benign", "safe", "unharmful"}


def _as_bool(value: object, where: str) -> bool:
    if value is None or value == "":
        return True  # user sets are harmful requests unless they say otherwise
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in _TRUE or s in _FALSE:
        return s in _TRUE
    raise SafetuneError(f"{where}: cannot read harmful={str(value)[:40]!r} as true/false")


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:
    for n, rec in jsonl_objects(path):
        if not isinstance(rec, dict) or "prompt" not in rec:
            raise SafetuneError(f"{path}:{n}: expected a JSON object with a 'prompt' field")
        yield n, rec


@functools.lru_cache(maxsize=32)
def _load_file(path: Path, _mtime_ns: int, _size: int) -> PromptSet:
    # mtime/size are part of the cache key so an edited file is re-read.
    reader = {".csv": csv_records, ".jsonl": _jsonl_records}.get(path.suffix.lower())
    if reader is None:
        raise SafetuneError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .jsonl")
    name, items, seen = path.stem, [], set()
    try:
        for n, rec in reader(path):
            where = f"{path}:{n}"
            prompt = rec.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise SafetuneError(f"{where}: empty or non-text prompt")
            # Ids default to the line number, which is stable as long as the file is.
            item_id = f"{name}/{str(rec.get('id') or '').strip() or n}"
            if item_id in seen:
                raise SafetuneError(f"{where}: duplicate id {item_id!r}")
            seen.add(item_id)
            category = str(rec.get("category") or "").strip() or "unspecified"
            items.append(PromptItem(item_id, prompt, category, name, _as_bool(rec.get("harmful"), where)))
    except csv.Error as e:
        raise SafetuneError(f"{path}: malformed CSV ({e})") from None
    except UnicodeDecodeError:
        raise SafetuneError(f"{path}: not UTF-8 text") from None
    if not items:
        raise SafetuneError(f"{path}: prompt set is empty")
    return PromptSet(name, tuple(items))


def _looks_like_path(name: str) -> bool:
    # Decides between "file not found" and "unknown dataset" for the error message.
    return os.sep in name or "/" in name or Path(name).suffix != "" or Path(name).exists()


# ---- public entry points ----------------------------------------------------------------------


def load_prompt_set(name: str) -> PromptSet:
    """A bundled set by registry name, a user CSV/JSONL path, or "a+b" (see load_prompt_sets)."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name.strip():
        raise SafetuneError(f"dataset name must be a non-empty string, got {name!r}")
    if name in DATASETS:
        return _load_builtin(name)
    path = Path(name).expanduser()
    if path.is_file():
        st = path.stat()
        return _load_file(path.resolve(), st.st_mtime_ns, st.st_size)
    if "+" in name:  # lets a CLI flag or a logged PromptSet.name name a concatenation
        return load_prompt_sets(name.split("+"))
    if _looks_like_path(name):
        raise SafetuneError(f"prompt file not found: {name}")
    raise SafetuneError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())} (or a path to a .csv/.jsonl file)")


def load_prompt_sets(names: Iterable[str]) -> PromptSet:
    """Concatenate sets in order; an id in two sets is an error (the same prompt counted twice)."""
    if isinstance(names, str):  # a bare string would otherwise be iterated character by character
        names = [names]
    sets = [load_prompt_set(n) for n in names]
    if not sets:
        raise SafetuneError("no dataset names given")
    if len(sets) == 1:
        return sets[0]
    owner: dict[str, str] = {}
    for ps in sets:
        for it in ps.items:
            if it.id in owner:
                raise SafetuneError(f"duplicate id {it.id!r} in {owner[it.id]!r} and {ps.name!r}")
            owner[it.id] = ps.name
    return PromptSet("+".join(ps.name for ps in sets), tuple(it for ps in sets for it in ps.items))
