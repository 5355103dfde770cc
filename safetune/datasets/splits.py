"""Deterministic, category-stratified search/holdout splits and subsamples.

Ordering uses sha256 of (seed, key) rather than random.Random or hash(): the result must be the
same on every machine and Python run (hash() is salted per process), and an item's side of the
split must not change when unrelated items are added to or removed from the set.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from safetune.datasets.items import PromptItem, PromptSet
from safetune.datasets.loaders import load_prompt_sets
from safetune.config import PARTS
from safetune.errors import SafetuneError

SPLIT_SEED = 0  # the search/holdout split of prompt sets and tasks never depends on a search's seed


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\0{key}".encode("utf-8")).hexdigest()


def _by_category(ps: PromptSet) -> dict[str, list[PromptItem]]:
    groups: dict[str, list[PromptItem]] = defaultdict(list)
    for it in ps.items:
        groups[it.category].append(it)
    return groups


def _subset(ps: PromptSet, keep: set[str], name: str) -> PromptSet:
    # Keep the original order so a subset reads like the source file.
    return PromptSet(name, tuple(it for it in ps.items if it.id in keep))


def split(ps: PromptSet, part: str, holdout_fraction: float = 0.5, seed: int = 0) -> PromptSet:
    """One part of a split: within each category, the first k items by hash go to holdout.

    k = round(fraction * n) (half up), clamped to [1, n-1] when a category has n >= 2 items so
    every such category is represented on both sides whatever the fraction. Items are kept in
    their original order.
    """
    if part not in PARTS:
        raise SafetuneError(f"unknown split part {part!r}; use one of: {', '.join(PARTS)}")
    if isinstance(holdout_fraction, bool) or not isinstance(holdout_fraction, (int, float)) or not 0 < holdout_fraction < 1:
        raise SafetuneError(f"holdout_fraction must be strictly between 0 and 1, got {holdout_fraction!r}")
    if part == "all":
        return ps
    groups = list(_by_category(ps).values())
    # Singleton categories are pooled into one stratum: on their own each would round the same
    # way and all land on one side (e.g. a user file with one item per category).
    singles = [g[0] for g in groups if len(g) == 1]
    strata = [g for g in groups if len(g) > 1] + ([singles] if singles else [])
    holdout: set[str] = set()
    for items in strata:
        n = len(items)
        k = int(holdout_fraction * n + 0.5)
        if n >= 2:
            k = min(max(k, 1), n - 1)
        holdout.update(it.id for it in sorted(items, key=lambda it: _rank(seed, it.id))[:k])
    keep = holdout if part == "holdout" else {it.id for it in ps.items} - holdout
    if not keep:
        raise SafetuneError(
            f"the {part!r} part of {ps.name!r} is empty (holdout_fraction={holdout_fraction}, {len(ps)} items)"
        )
    return _subset(ps, keep, f"{ps.name}:{part}")


def sample(ps: PromptSet, n: int, seed: int = 0) -> PromptSet:
    """n items taken round-robin across categories (each in hash order), so small n still covers
    as many categories as possible; n >= len(ps) returns ps unchanged."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SafetuneError(f"sample size must be a positive integer, got {n!r}")
    if n >= len(ps):
        return ps
    groups = _by_category(ps)
    # Category order is also seeded, so when n < #categories different seeds cover different ones.
    queues = [sorted(items, key=lambda it: _rank(seed, it.id)) for _, items in
              sorted(groups.items(), key=lambda kv: _rank(seed, "category:" + kv[0]))]
    picked: list[str] = []
    depth = 0
    while len(picked) < n:
        for q in queues:
            if depth < len(q) and len(picked) < n:
                picked.append(q[depth].id)
        depth += 1
    return _subset(ps, set(picked), f"{ps.name}:sample{n}")


def unused_sample(pool: PromptSet, used: PromptSet, n: int, seed: int) -> PromptSet | None:
    """``n`` prompts of ``pool`` that ``used`` does not hold (e.g. validation prompts a search never
    asked), named ``<pool>:validation``; None if ``n`` < 1 or none are left."""
    if n < 1:
        return None
    used_ids = {it.id for it in used}
    rest = tuple(it for it in pool if it.id not in used_ids)
    if not rest:
        return None
    return sample(PromptSet(f"{pool.name}:validation", rest), min(n, len(rest)), seed=seed)


def fixed_split(names, part: str) -> PromptSet:
    """One side of the fixed split (``SPLIT_SEED``) of the named prompt sets, whatever seed a search
    uses: the holdout side stays unseen by every search."""
    return split(load_prompt_sets(names), part, seed=SPLIT_SEED)
