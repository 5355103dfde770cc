"""The vendored training files (``data/``, see its README) and the rules for our own hand-written ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
DEVSET = DATA_DIR / "devset.jsonl"
DEV_FRACTION = 0.25

PYRIT_OBJECTIVE = ["bias", "chemical_biological", "cyber", "exploits", "harassment_bullying", "hate_speech",
                   "illegal_activity", "info_integrity", "misinformation", "phishing", "privacy", "self_harm",
                   "sexual", "violence"]
# The "mini_*" harm files are subsets of the multi-score ones, so they are not vendored.
PYRIT_HARM = ["exploits", "hate_speech", "hate_speech_multi_score", "info_integrity", "privacy",
              "representational", "self_harm", "sexual", "violence", "violence_multi_score"]
RHO_FILES = {"rho_overrefusal_benign_edgy_80.json": "overrefusal/benign_edgy_80.json",
             "rho_overrefusal_expanded_70.json": "overrefusal/expanded_70.json",
             "rho_refusal_harmful_benign_50.json": "refusal/harmful_benign_50.json",
             "rho_refusal_expanded_100.json": "refusal/expanded_100.json"}
# Benign (often edgy: vaccines, IQ, conspiracy claims) questions with a good answer ("positive").
RHO_BRIDGES = ["bias/bridge_pairs", "bias/bridge_scaleup", "deception/bridge_pairs", "deception/bridge_scaleup",
               "reasoning/bridge_pairs", "reasoning/bridge_scaleup", "reasoning/bridge_scaleup_v2",
               "toxicity/bridge_pairs", "sycophancy/harder_pairs_16"]
RHO_FILES |= {"rho_" + b.replace("/", "_") + ".json": b + ".json" for b in RHO_BRIDGES}
XSTEST = "xstest_v2_completions_labelled.csv"  # reporting only
XSTEST_MAX_OVERLAP = 0.30  # a hand-written prompt shares less than this with every XSTest prompt
HANDWRITTEN = "handwritten_benign_edgy.json"
CONTRAST = "handwritten_harmful_contrast.json"  # harmful requests in the benign file's words and forms
EVERYDAY = "handwritten_everyday.json"  # plain everyday requests + good answers (no edgy words)
# Safe answers to harmful training requests that still address the topic: prevention, redirection,
# refusal with an explanation (what an "advances the request?" criterion must tell from compliance).
SAFE_ANSWERS = "handwritten_safe_answers.jsonl"
SAFE_ANSWER_KINDS = {"prevention": "prevention answer", "redirection": "redirection answer",
                     "refusal_explained": "refusal with explanation"}
# The same kinds of answer in a form training lacks: long markdown answers with headers, bold leads
# and lists (risks and consequences, how people protect themselves, where to get help), as chat
# assistants write them. Dev requests only: a probe of how the judge carries over to another form.
# (37 more for training requests moved neither CV nor dev; not shipped, see the data README.)
LONG_ANSWERS = "handwritten_long_safe_answers.jsonl"
LONG_ANSWER_KINDS = {"long_form": "long-form safe answer"}
# Real answers of the offline models (Qwen2.5-Coder-0.5B, SmolLM2-135M) to training requests, read and
# labelled by hand: how a small model complies (vague steps, repetition, a disclaimer on top) is not how
# the human-written harmful answers above read, and the judge mostly scores a model's own answers.
# ``ambiguous`` answers (an answer in form with nothing harmful in it) are not used.
MODEL_ANSWERS = "model_answers_labelled.jsonl"
MODEL_ANSWER_KINDS = {"compliance": (1, "model compliance"), "safe": (0, "model safe answer")}
# Our reading of every PyRIT answer (959 objective and harm rows), judge-blind: where the source label
# contradicts SafeTune's definition (harmful = carries out a harmful request with usable content), the
# row's label is overridden, keyed by a hash of its prompt and response, with a one-line reason: a
# redirection to crisis lines labelled "objective achieved", a benign request answered benignly, text
# labelled two ways. Kinds follow the new label. Opt-in (``load_labelled(label_audit=True)``).
LABEL_AUDIT = "label_audit.jsonl"
AUDIT_KINDS = {"pyrit-objective": {0: "objective not achieved", 1: "unsafe compliance"},
               "pyrit-harm": {0: "low-harm answer", 1: "unsafe compliance"}}


def read_csv(name: str):
    """A vendored CSV (PyRIT's start with "# dataset_version=..." comment lines, skipped)."""
    import pandas as pd

    path = DATA_DIR / name
    with path.open(encoding="utf-8") as fh:
        skip = next(i for i, line in enumerate(fh) if not line.startswith("#"))
    return pd.read_csv(path, skiprows=skip)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def xstest_prompt_words(path: Path | None = None) -> list[set[str]] | None:
    """Content-word sets of XSTest's distinct prompts (``None`` when the CSV is absent)."""
    import csv

    from safetune.components.judges.textstats import content_words

    path = path or DATA_DIR / XSTEST
    if not path.exists():
        return None
    with path.open(encoding="utf-8", newline="") as fh:
        prompts = {row["prompt"] for row in csv.DictReader(fh)}
    return [set(content_words(q)) for q in prompts]


def closest_overlap(prompt: str, word_sets: list[set[str]]) -> float:
    """Largest content-word Jaccard overlap |A & B| / |A | B| between ``prompt`` and any set."""
    from safetune.components.judges.textstats import content_words

    words = set(content_words(prompt))
    return max((len(words & ws) / len(words | ws) for ws in word_sets if words | ws), default=0.0)


def too_close_to_xstest(items: list[dict], word_sets: list[set[str]]) -> list[str]:
    """Ids of hand-written items whose prompt is as close as ``XSTEST_MAX_OVERLAP`` to an XSTest prompt."""
    return [x["id"] for x in items if closest_overlap(x["prompt"], word_sets) >= XSTEST_MAX_OVERLAP]
