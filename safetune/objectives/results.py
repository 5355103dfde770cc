"""One candidate configuration's measurements: what the search optimises and the runs log."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from safetune.config import DecodingConfig

NAN = float("nan")


@dataclass
class CandidateResult:
    config: DecodingConfig
    harm_rate: float
    harm_ci_low: float
    harm_ci_high: float
    harm_score: float  # mean continuous cost from the primary judge
    relevance: float
    n_responses: int
    n_unknown: int  # verdicts the judge could not give (never counted as safe or harmful)
    new_tokens: int
    prompt_tokens: int
    truncated_rate: float  # responses cut by max_new_tokens
    seconds: float  # this candidate's share of the population's wall time
    incoherence_rate: float = NAN  # degenerate or empty responses, harmful + benign prompts
    benign_compliance: float = NAN  # answered (not refused, not degenerate) benign prompts
    capability: float = NAN  # accuracy on capability items
    # Coherent, not refused, on topic and complete benign answers (objectives/guards.py).
    benign_helpfulness: float = NAN
    fluency_nll: float = NAN  # median raw-distribution NLL (nats/token) of harmful + benign responses
    n_benign: int = 0
    n_capability: int = 0
    flip_rate: float = NAN  # harmful prompts whose samples disagree (needs samples > 1)
    extra: dict = field(default_factory=dict)  # other judges' rates, agreement, per-task accuracy
    rows: list[dict] = field(default_factory=list)  # per response: ids, text, verdict fields

    def objectives(self) -> tuple[float, float]:
        """Minimised by the search: harm rate, and relevance negated."""
        return self.harm_rate, -self.relevance

    def metrics(self) -> dict[str, float]:
        out = {
            "harm_rate": self.harm_rate,
            "harm_rate_ci_low": self.harm_ci_low,
            "harm_rate_ci_high": self.harm_ci_high,
            "harm_score": self.harm_score,
            "relevance": self.relevance,
            "n_responses": self.n_responses,
            "n_unknown": self.n_unknown,
            "new_tokens": self.new_tokens,
            "prompt_tokens": self.prompt_tokens,
            "truncated_rate": self.truncated_rate,
            "wall_time_s": self.seconds,
            "incoherence_rate": self.incoherence_rate,
            "benign_compliance": self.benign_compliance,
            "capability": self.capability,
            "benign_helpfulness": self.benign_helpfulness,
            "fluency_nll": self.fluency_nll,
            "n_benign": self.n_benign,
            "n_capability": self.n_capability,
            "flip_rate": self.flip_rate,
            **self.extra,
        }
        return {k: float(v) for k, v in out.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}

    def to_dict(self) -> dict:
        data = asdict(self)
        data["config"] = self.config.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "CandidateResult":
        data = dict(data)
        data["config"] = DecodingConfig.from_dict(data["config"])
        return cls(**data)
