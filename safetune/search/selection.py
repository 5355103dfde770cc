"""Which configuration gets which registry alias: the champion rule and the summary it leaves.

The Pareto front is chosen on the search prompts, so its harm rates are optimistically biased (the
winner's curse: among many noisy candidates the ones that *look* safest are partly lucky). The
champion is therefore picked on prompts the search never saw: the rest of the ``search`` split (the
``holdout`` split stays untouched for ``safetune evaluate``). The rule is Safe RLHF's constrained
one, maximise utility subject to harm rate <= budget, with the quality guards on top
(``objectives/guards.py``).

Without a baseline to compare with, the older rule applies: ``champion`` is the most relevant
configuration whose harm rate lies within the confidence interval of the safest one (statistically
as safe as the best, and the most useful of those), or the most relevant under a harm budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from safetune.errors import SafetuneError
from safetune.objectives.guards import failed_constraints, significantly_safer, verdict
from safetune.objectives.results import CandidateResult


@dataclass(frozen=True)
class Point:
    key: str
    harm_rate: float
    harm_ci_high: float
    relevance: float


def safest(points: list[Point]) -> Point:
    return min(points, key=lambda p: (p.harm_rate, -p.relevance))


def most_relevant(points: list[Point]) -> Point:
    return max(points, key=lambda p: (p.relevance, -p.harm_rate))


def champion(points: list[Point], harm_budget: float | None = None) -> tuple[Point, str]:
    """Return the champion and a one-line description of the rule that chose it."""
    if not points:
        raise SafetuneError("no configuration to choose a champion from")
    if harm_budget is not None:
        feasible = [p for p in points if p.harm_rate <= harm_budget]
        if not feasible:
            best = safest(points)
            return best, f"no configuration with harm_rate <= {harm_budget}; fell back to the safest"
        return most_relevant(feasible), f"most relevant with harm_rate <= {harm_budget}"
    best = safest(points)
    bound = best.harm_ci_high
    within = [p for p in points if p.harm_rate <= bound]
    return most_relevant(within), f"most relevant with harm_rate <= {bound:.4f} (safest's Wilson upper bound)"


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
    that keep every quality constraint against the default (objectives/guards.py) on the same items,
    the most *helpful* on benign prompts (ties: relevance). Utility is benign helpfulness, not
    relevance: relevance to a harmful request rewards engaging with it, helpfulness is what a user
    of the safer model keeps. If none qualifies, ``champion`` is the model's default configuration
    (``default_key``). Without a baseline (``default_key`` None) the older rule applies: the most
    relevant within the safest one's Wilson interval, or under the budget.
    """
    measured = validation if validation is not None else search
    split = "validation" if validation is not None else "search"
    points = [Point(k, r.harm_rate, r.harm_ci_high, r.relevance) for k, r in zip(keys, measured)]
    aliases = {"safest": safest(points).key, "most-relevant": most_relevant(points).key}
    if default_key is None or baseline is None:
        champ, rule = champion(points, harm_budget)
        return Selection({"champion": champ.key, **aliases}, f"{rule}, measured on the {split} prompts", split)

    reasons: dict[str, str] = {}
    qualifying = []
    for key, r in zip(keys, measured):
        if r.config == baseline.config:
            reasons[key] = "is the default"
            continue
        safer, p = significantly_safer(r, baseline, alpha)
        failed = failed_constraints(r, baseline, guards) if guards is not None else []
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


SUMMARY_METRICS = ("harm_rate", "relevance", "benign_helpfulness", "fluency_nll", "capability", "incoherence_rate")


def champion_summary(chosen: Selection, measured: dict[str, CandidateResult], baseline: CandidateResult,
                     guard_config) -> dict:
    """Default vs champion on the selection split, with the verdict, for the console and the run note."""
    champ = measured[chosen.aliases["champion"]]
    is_default = not chosen.kept_quality or champ.config == baseline.config
    safer, p = significantly_safer(champ, baseline) if not is_default else (False, 1.0)
    worse = failed_constraints(champ, baseline, guard_config) if not is_default else []
    return {
        "split": chosen.split, "rule": chosen.rule, "kept_quality": chosen.kept_quality,
        "default": {k: getattr(baseline, k) for k in SUMMARY_METRICS},
        "champion": {k: getattr(champ, k) for k in SUMMARY_METRICS},
        "champion_config": champ.config.to_dict(), "champion_is_default": is_default,
        "harm_p_one_sided": p,
        "verdict": "the model default (no safer configuration kept the model's quality)" if is_default
        else verdict(safer, worse),
    }
