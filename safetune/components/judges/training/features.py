"""What the heads see: embeddings (through an explicit ``EmbeddingCache``), text measures, and the fit.

The features are the trained judge's own (``trained.text_features``, ``comply_matrix``), so a judge
trained here scores exactly as it was validated.
"""

from __future__ import annotations

import numpy as np

from safetune.components.embeddings import EmbeddingCache
from safetune.components.judges.base import trailing_views
from safetune.components.judges.trained import comply_matrix, knn_margin, predict_head, text_features

PROMPT_C = 0.03  # strong L2 (384 features, a few hundred prompts); picked by grouped CV
# Comply head: small ReLU networks instead of the former logistic regression (C = 0.01): grouped-CV
# ROC AUC 0.926 -> 0.935 (judge-train's MANIFEST), dev-set prevention answers flagged 0.39 -> 0.21
# (judge-eval). Three seeds averaged, so the verdicts depend less on one network's initialisation.
COMPLY_HIDDEN, COMPLY_ALPHA, COMPLY_NETS = 64, 1.0, 3
# The comply head also sees the response's residual off the prompt (``trained.comply_matrix``).
COMPLY_RESIDUAL = True
# Since format 5 every text vector is MiniLM's stacked with the embedded generator's hidden states after
# a few of its 30 layers (``embeddings.StackedEmbedder``): sentence embeddings carry the topic and blur
# the stance (declining, protecting vs instructing) that the LM's states keep. Grouped 5-fold CV on the
# train split (``python benchmarks/bench_comply_head.py --lm smollm2-135m --layer 9``): comply AUC
# 0.947 -> 0.975. ``layer`` trades that against the judge's cost (the layers after it never run).
JUDGE_LM = {"model": "smollm2-135m", "layer": 5, "max_length": 128}


def features(rows: list[dict], vec: dict, residual: bool = COMPLY_RESIDUAL):
    """(prompt vectors, comply-head inputs, cosines, text details) of answered rows. Every non-blank text
    must be in ``vec`` (``embed_training_texts``): a missing one is an error, never a zero vector."""
    zero = np.zeros(len(next(iter(vec.values()))), dtype=np.float32)
    missing = sum(r["response"].strip() != "" and r["response"] not in vec for r in rows)
    if missing:
        raise KeyError(f"{missing} of {len(rows)} responses were never embedded")
    pe = np.stack([vec[r["prompt"]] for r in rows])
    re_ = np.stack([vec[r["response"]] if r["response"].strip() else zero for r in rows])
    cos = (pe * re_).sum(axis=1)
    tf = [text_features(r["prompt"], r["response"], c) for r, c in zip(rows, cos)]
    x = comply_matrix(re_, np.array([f for f, _ in tf], dtype=np.float32), pe if residual else None)
    return pe, x, cos, [d for _, d in tf]


def fit_head(x: np.ndarray, y: np.ndarray, c: float) -> dict:
    """Standardise + class-balanced L2 logistic regression (lbfgs: deterministic), as plain arrays."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(x)
    lr = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(sc.transform(x), y)
    return {"mean": sc.mean_, "scale": sc.scale_, "coef": lr.coef_[0], "intercept": lr.intercept_}


def fit_network_head(x: np.ndarray, y: np.ndarray, seed: int, nets: int = COMPLY_NETS) -> dict:
    """Standardise + ``nets`` one-hidden-layer ReLU networks (adam, L2 ``COMPLY_ALPHA``, class-balanced
    sample weights, seeds ``seed``..), stored as plain arrays for ``predict_head``."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils.class_weight import compute_sample_weight

    sc = StandardScaler().fit(x)
    xs, w = sc.transform(x), compute_sample_weight("balanced", y)
    fits = [MLPClassifier((COMPLY_HIDDEN,), alpha=COMPLY_ALPHA, max_iter=500, random_state=seed + k).fit(xs, y, sample_weight=w)
            for k in range(nets)]
    return {"mean": sc.mean_, "scale": sc.scale_,
            "w1": np.stack([m.coefs_[0] for m in fits]), "b1": np.stack([m.intercepts_[0] for m in fits]),
            "w2": np.stack([m.coefs_[1][:, 0] for m in fits]), "b2": np.array([m.intercepts_[1][0] for m in fits])}


TRUNCATE_WORDS = 40


def truncated(rows: list[dict]) -> list[dict]:
    """Real answers cut to their first ~40 words, same label: human-labelled harmful answers are long
    and refusals short, so without these the head learns "short = safe" and misses terse answers."""
    out = []
    for r in rows:
        words_ = r["response"].split(" ")
        if r["source"] != "synthetic" and len(words_) > 2 * TRUNCATE_WORDS:
            out.append({**r, "response": " ".join(words_[:TRUNCATE_WORDS])})
    return out


def comply_rows(rows: list[dict]) -> list[dict]:
    """The comply head's rows: labelled answers to harmful requests."""
    return [r for r in rows if r["response"] is not None and r["label"] is not None and r["prompt_harmful"] == 1]


def tail_views(rows: list[dict]) -> list[dict]:
    """Each answer without its last one and two short sentences (``base.trailing_views``), same label.

    The judge also scores these views at inference (so a trailing refusal cannot erase harm); trained
    without them, the head had never seen a prevention answer cut before its closing advice and
    flagged such cuts. ``python benchmarks/bench_comply_head.py`` (train split, grouped 5-fold) measures
    it with the residual input: comply AUC 0.941 -> 0.947, prevention answers flagged with views at 80%
    recall 0.211 -> 0.178.
    """
    return [{**r, "response": v} for r in rows for v in trailing_views(r["response"])]


def embed_training_texts(rows: list[dict], embed: EmbeddingCache) -> None:
    """Embed in one call every text the heads train or score on: prompts, answers, their truncations and
    the answers' trailing views (the comply head trains on those of answers to harmful requests; the
    cross-validation scores all of them, as the judge does)."""
    answered = [r for r in rows if r["response"] is not None]
    embed([r["prompt"] for r in rows] + [r["response"] for r in answered + truncated(answered) + tail_views(answered)])


def fit_heads(rows: list[dict], embed: EmbeddingCache, seed: int = 0, residual: bool = COMPLY_RESIDUAL,
              views: bool = True) -> dict:
    """The prompt head (and its nearest-prompt bank) and the comply head, fitted on ``rows``; ``residual``
    and ``views`` switch the comply head's residual input and trailing-view rows (ablations only)."""
    prompts = {r["prompt"]: r["prompt_harmful"] for r in rows if r["prompt_harmful"] is not None}
    keys = sorted(prompts)
    vec = embed(keys)
    pe, y = np.stack([vec[p] for p in keys]), np.array([prompts[p] for p in keys])
    heads = {"prompt": fit_head(pe, y, PROMPT_C), "bank": {"emb": pe.astype(np.float16), "label": y.astype(np.int8)}}
    # Comply head: only rows whose request is harmful, label = human/synthetic "harmful answer".
    # (Benign rows would teach "any good answer complies", and the same rho answer is benign for
    # its own question but a safe off-target answer for the harmful twin: opposite labels.)
    comply = comply_rows(rows)
    comply += truncated(comply) + (tail_views(comply) if views else [])
    vec = embed([r["response"] for r in comply])
    _, x, _, _ = features(comply, vec, residual)
    heads["comply"] = fit_network_head(x, np.array([r["label"] for r in comply]), seed)
    return heads


def head_outputs(heads: dict, rows: list[dict], vec: dict, residual: bool = COMPLY_RESIDUAL):
    """(P(prompt harmful), P(comply), cosine, details with the nearest-prompt margin) of answered rows."""
    pe, x, cos, det = features(rows, vec, residual)
    for d, m in zip(det, knn_margin(heads["bank"], pe)):
        d["prompt_knn_margin"] = float(m)
    return predict_head(pe, heads["prompt"]), predict_head(x, heads["comply"]), cos, det
