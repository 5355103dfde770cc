"""The two value types every prompt set is made of."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from safetune.errors import SafetuneError

if TYPE_CHECKING:  # pandas is only needed by to_pandas; keep importing this package cheap
    import pandas


@dataclass(frozen=True)
class PromptItem:
    id: str  # stable "<source>/<upstream id>", so results can be joined across runs
    # repr=False: reprs end up in logs and tracebacks, and harmful prompt text must not.
    prompt: str = field(repr=False)  # the full user message, exactly what the model is sent
    category: str  # harm category (or XSTest type); what splits and samples stratify on
    source: str  # dataset name
    harmful: bool  # False for benign over-refusal probes (XSTest safe)


def content_digest(items: tuple[PromptItem, ...]) -> str:
    # JSON of (id, prompt) pairs: unambiguous (no separator collisions) and independent of the
    # set's name, so the same prompts always log the same digest to mlflow.
    canon = json.dumps([[it.id, it.prompt] for it in items], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PromptSet:
    name: str
    items: tuple[PromptItem, ...]
    digest: str = field(default="", compare=False)  # computed from items; never trusted from callers

    def __post_init__(self) -> None:
        # Invariants enforced once here, so every consumer can rely on them: non-empty, unique ids.
        items = tuple(self.items)
        if not items:
            raise SafetuneError(f"prompt set {self.name!r} is empty")
        seen: set[str] = set()
        for it in items:
            if it.id in seen:
                raise SafetuneError(f"prompt set {self.name!r} has duplicate id {it.id!r}")
            seen.add(it.id)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "digest", content_digest(items))

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:  # a summary: the default repr would dump every prompt
        return f"PromptSet(name={self.name!r}, items=<{len(self.items)}>, digest={self.digest[:12]!r})"

    def __iter__(self) -> Iterator[PromptItem]:
        return iter(self.items)

    def to_pandas(self) -> "pandas.DataFrame":
        import pandas as pd

        cols = ["id", "prompt", "category", "source", "harmful"]
        return pd.DataFrame([[getattr(it, c) for c in cols] for it in self.items], columns=cols)
