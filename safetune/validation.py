"""Constrained selection on a validation slice, after Safe RLHF.

The Pareto front is chosen on the search prompts, so its harm rates are optimistically biased
(the winner's curse: among many noisy candidates the ones that *look* safest are partly lucky).
The champion is therefore picked on prompts the search never saw: the rest of the ``search`` split
(the ``holdout`` split stays untouched for ``safetune evaluate``). The rule is Safe RLHF's
constrained one — maximise utility (relevance) subject to harm rate <= budget — with the guards
already applied (the front holds only configurations that satisfied them, when any did).
"""

from __future__ import annotations

from dataclasses import dataclass

from safetune.datasets import PromptSet, sample
from safetune.evaluation import CandidateResult
from safetune.search import selection


def validation_slice(pool: PromptSet, used: PromptSet, n: int, seed: int) -> PromptSet | None:
    """``n`` prompts of ``pool`` (the search split) that the search did not use; None if none are left."""
    if n < 1:
        return None
    used_ids = {it.id for it in used}
    rest = tuple(it for it in pool if it.id not in used_ids)
    if not rest:
        return None
    return sample(PromptSet(f"{pool.name}:validation", rest), min(n, len(rest)), seed=seed)


@dataclass
class Selection:
    aliases: dict[str, str]  # alias -> key of the chosen point
    rule: str  # one line: how the champion was chosen
    split: str  # "validation" or "search": whose measurements chose


def select(keys: list[str], search: list[CandidateResult], validation: list[CandidateResult] | None,
           harm_budget: float | None) -> Selection:
    """Aliases for the front's configurations, from validation measurements when there are any."""
    measured = validation if validation is not None else search
    points = [selection.Point(k, r.harm_rate, r.harm_ci_high, r.relevance) for k, r in zip(keys, measured)]
    champ, rule = selection.champion(points, harm_budget)
    split = "validation" if validation is not None else "search"
    return Selection(
        aliases={
            "champion": champ.key,
            "safest": selection.safest(points).key,
            "most-relevant": selection.most_relevant(points).key,
        },
        rule=f"{rule}, measured on the {split} prompts",
        split=split,
    )
