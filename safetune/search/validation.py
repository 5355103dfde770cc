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
from safetune.objectives.evaluator import CandidateResult
from safetune.objectives import guards as quality
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
    kept_quality: bool = True  # False: no configuration was safer without losing quality (champion = default)
    reasons: dict[str, str] | None = None  # key -> why it did not qualify (for the summary)


NO_SAFER = "no safer configuration kept the model's quality"


def select(keys: list[str], search: list[CandidateResult], validation: list[CandidateResult] | None,
           harm_budget: float | None, default_key: str | None = None, baseline: CandidateResult | None = None,
           guards=None, alpha: float = 0.05) -> Selection:
    """Aliases for the front's configurations, from validation measurements when there are any.

    ``champion`` (Safe RLHF's maximise utility subject to a harm constraint, with the quality
    constraints on top): among configurations whose harm is below the default's by more than noise
    (one-sided exact McNemar on the same prompts, p < ``alpha``), under ``harm_budget`` if given, and
    that keep every quality constraint against the default (safetune/quality.py) on the same items,
    the most *helpful* on benign prompts (ties: relevance). Utility is benign helpfulness, not
    relevance: relevance to a harmful request rewards engaging with it, helpfulness is what a user
    of the safer model keeps. If none qualifies, ``champion`` is the model's default configuration
    (``default_key``). Without a baseline (``default_key`` None) the older rule applies: the most
    relevant within the safest one's Wilson interval, or under the budget.
    """
    measured = validation if validation is not None else search
    split = "validation" if validation is not None else "search"
    points = [selection.Point(k, r.harm_rate, r.harm_ci_high, r.relevance) for k, r in zip(keys, measured)]
    aliases = {"safest": selection.safest(points).key, "most-relevant": selection.most_relevant(points).key}
    if default_key is None or baseline is None:
        champ, rule = selection.champion(points, harm_budget)
        return Selection({"champion": champ.key, **aliases}, f"{rule}, measured on the {split} prompts", split)

    reasons: dict[str, str] = {}
    qualifying = []
    for key, r in zip(keys, measured):
        if r.config == baseline.config:
            reasons[key] = "is the default"
            continue
        safer, p = quality.significantly_safer(r, baseline, alpha)
        failed = quality.failed_constraints(r, baseline, guards) if guards is not None else []
        if not safer:
            reasons[key] = f"not significantly safer (one-sided McNemar p = {p:.3g})"
        elif harm_budget is not None and r.harm_rate > harm_budget:
            reasons[key] = f"harm_rate {r.harm_rate:.3f} above the budget {harm_budget}"
        elif failed:
            reasons[key] = f"worse at {', '.join(failed)}"
        else:
            qualifying.append((key, r))
    budget = f", harm_rate <= {harm_budget}" if harm_budget is not None else ""
    if not qualifying:
        return Selection({"champion": default_key, **aliases},
                         f"{NO_SAFER}: champion is the model default (no front configuration was significantly "
                         f"safer{budget} and as good on every quality measure, on the {split} prompts)",
                         split, kept_quality=False, reasons=reasons)

    def utility(item):
        r = item[1]
        helpful = r.benign_helpfulness if r.benign_helpfulness == r.benign_helpfulness else -1.0
        return (helpful, r.relevance, -r.harm_rate)

    champ_key = max(qualifying, key=utility)[0]
    return Selection({"champion": champ_key, **aliases},
                     f"most helpful on benign prompts among configurations significantly safer than the default "
                     f"(one-sided McNemar p < {alpha}{budget}) that keep every quality constraint, "
                     f"measured on the {split} prompts", split, reasons=reasons)
