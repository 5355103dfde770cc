"""Load bundled prompt sets by name, or a user's CSV/JSONL file by path.

Everything is read with the csv/json modules (not pandas) so a malformed file can be reported
with its line number, and loading stays fast and dependency-free.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Iterator

from safetune.errors import SafetuneError
from safetune.datasets.items import PromptItem, PromptSet

HARMBENCH_CONTEXT_SEP = "\n\n---\n\n"  # HarmBench's own separator between context and request


def _bundled_rows(filename: str) -> list[dict[str, str]]:
    path = resources.files("safetune.datasets").joinpath("data", filename)
    try:
        with path.open("r", encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        # Happens when the wheel was built without package data.
        raise SafetuneError(f"bundled data file {filename!r} is missing; reinstall safetune with its package data") from None


def _harmbench(kinds: tuple[str, ...]) -> list[PromptItem]:
    items = []
    for r in _bundled_rows("harmbench_behaviors_text_all.csv"):
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
        for r in _bundled_rows("advbench_behaviors.csv")
    ]


def _strongreject() -> list[PromptItem]:
    # The CSV has no id column; the row number is stable because the bundled file never changes.
    return [
        PromptItem(f"strongreject/{i}", r["forbidden_prompt"], r["category"], "strongreject", True)
        for i, r in enumerate(_bundled_rows("strongreject_dataset.csv"))
    ]


def _xstest(harmful: bool) -> list[PromptItem]:
    # Unsafe XSTest prompts are exactly the contrast_* types; label is checked too as a guard.
    rows = _bundled_rows("xstest_prompts.csv")
    return [
        PromptItem(f"xstest/{r['id']}", r["prompt"], r["type"], "xstest", harmful)
        for r in rows
        if r["type"].startswith("contrast_") == harmful and (r["label"] == "unsafe") == harmful
    ]


_REGISTRY: dict[str, Callable[[], list[PromptItem]]] = {
    "harmbench": lambda: _harmbench(("standard", "contextual")),
    "harmbench-standard": lambda: _harmbench(("standard",)),
    "harmbench-contextual": lambda: _harmbench(("contextual",)),
    "strongreject": _strongreject,
    "advbench": _advbench,
    "xstest-safe": lambda: _xstest(False),
    "xstest-unsafe": lambda: _xstest(True),
}


def dataset_names() -> list[str]:
    return list(_REGISTRY)


@functools.lru_cache(maxsize=None)
def _load_builtin(name: str) -> PromptSet:
    return PromptSet(name, tuple(_REGISTRY[name]()))


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


def _csv_records(path: Path) -> Iterator[tuple[int, dict]]:
    # utf-8-sig: spreadsheet exports often start with a BOM, which would hide the 'prompt' header.
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        # strict=True makes bad quoting an error instead of silently merging fields.
        reader = csv.reader(f, strict=True)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        if "prompt" not in header:
            raise SafetuneError(f"{path}: no 'prompt' column (columns: {', '.join(header)})")
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise SafetuneError(f"{path}:{reader.line_num}: expected {len(header)} fields, got {len(row)}")
            yield reader.line_num, dict(zip(header, row))


def jsonl_objects(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) of each non-blank line of a UTF-8 JSONL file; a line that is not
    JSON, or a file that is not UTF-8, is a one-line error naming the place."""
    with path.open("r", encoding="utf-8-sig") as f:
        try:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    raise SafetuneError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        except UnicodeDecodeError as e:
            raise SafetuneError(f"{path} is not UTF-8 text (byte {e.start}): convert it to UTF-8") from None


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:
    for n, rec in jsonl_objects(path):
        if not isinstance(rec, dict) or "prompt" not in rec:
            raise SafetuneError(f"{path}:{n}: expected a JSON object with a 'prompt' field")
        yield n, rec


@functools.lru_cache(maxsize=32)
def _load_file(path: Path, _mtime_ns: int, _size: int) -> PromptSet:
    # mtime/size are part of the cache key so an edited file is re-read.
    reader = {".csv": _csv_records, ".jsonl": _jsonl_records}.get(path.suffix.lower())
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
    if name in _REGISTRY:
        return _load_builtin(name)
    path = Path(name).expanduser()
    if path.is_file():
        st = path.stat()
        return _load_file(path.resolve(), st.st_mtime_ns, st.st_size)
    if "+" in name:  # lets a CLI flag or a logged PromptSet.name name a concatenation
        return load_prompt_sets(name.split("+"))
    if _looks_like_path(name):
        raise SafetuneError(f"prompt file not found: {name}")
    raise SafetuneError(f"unknown dataset {name!r}; known: {', '.join(_REGISTRY)} (or a path to a .csv/.jsonl file)")


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
