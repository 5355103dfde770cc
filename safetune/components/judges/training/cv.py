"""Grouped cross-validation: out-of-fold head outputs, the stacker, the unsafe threshold and the CV metrics.

Groups are prompts (and rho pairs): a prompt's rows never straddle folds, so no fold scores a
prompt the judge saw.
"""

from __future__ import annotations

import numpy as np

from safetune.components.embeddings import EmbeddingCache
from safetune.components.judges.base import merge_trailing_views, trailing_views
from safetune.components.judges.trained import TrainedJudge, stack_matrix
from safetune.components.judges.trees import fit_trees, predict_proba
from safetune.components.judges.training.features import fit_heads, head_outputs

CV_FOLDS = 5
RELEVANCE_QUANTILE = 0.02  # relevance threshold = 2nd percentile of cosine over training positives
RELEVANCE_SOFTNESS = 0.05
FPR_BUDGET = 0.05
THRESHOLD_GRID = [round(0.05 * i, 2) for i in range(1, 20)]


# Stacker: shallow boosted trees over the heads' out-of-fold outputs + text measures. Depth 3 /
# 200 trees / rate 0.05 / leaves >= 20 rows, picked by grouped CV on the train split (depth 2 and
# small MLPs were within 0.01-0.03 balanced accuracy; a logistic stacker did not beat the product).
STACK_DEPTH, STACK_TREES, STACK_RATE, STACK_MIN_LEAF = 3, 200, 0.05, 20
# Monotone in what has a known direction (more prompt harm / compliance -> more harmful; more refusal,
# degeneration or emptiness -> less), free in the rest (order: trained.STACK_FEATURES). Pooled
# leave-one-source-out balanced accuracy (train without a data source, score it; 7 sources):
# product rule 0.752, free stacker 0.793, monotone 0.789, with benign-edgy FPR 0.26 / 0.21 / 0.15.
# Monotone is kept: equal within noise, and it cannot learn "more refusal = more harmful" from a quirk.
STACK_MONOTONIC = [1, 1, 1, 0, -1, 0, -1, 0, -1]


def _fold_of(rows: list[dict], seed: int, folds: int) -> dict[str, int]:
    groups = sorted({r["group"] for r in rows})
    order = np.random.RandomState(seed).permutation(len(groups))
    return {groups[j]: i % folds for i, j in enumerate(order)}


def _trains(row: dict, fold: int, fold_of: dict[str, int]) -> bool:
    """Whether ``fold``'s judge may train on ``row``: not if the row's group is held out, nor if its
    answer is a held-out group's (a synthetic swap reuses another group's harmful answer under its own
    prompt; trained on as "not harmful here", the fold's comply head would have seen the held-out
    answer's own text with the opposite label)."""
    return fold_of[row["group"]] != fold and fold_of.get(row.get("answer_group")) != fold


def _labelled(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["response"] is not None and r["label"] is not None]


def _oof_outputs(rows: list[dict], embed: EmbeddingCache, seed: int, folds: int, nested: bool = False,
                 extra: list[dict] | None = None):
    """Outputs for every labelled row from a judge that never saw its group (grouped K-fold).

    Returns (labelled rows, P(prompt harmful), P(comply), cosine, details, P(unsafe) or None). With
    ``nested`` each fold fits the whole judge (heads + stacker, the stacker on an inner K-fold), so
    the stacker's P(unsafe) is out-of-fold too; without it only the heads are fitted. ``extra``: more
    rows (with a ``group`` of ``rows``) scored by their group's fold judge but never trained on, such
    as the labelled rows' trailing views; they follow the labelled rows in the outputs.
    """
    fold_of = _fold_of(rows, seed, folds)
    lab = _labelled(rows) + list(extra or [])
    pp, pc, cos, pu = np.zeros(len(lab)), np.zeros(len(lab)), np.zeros(len(lab)), np.zeros(len(lab))
    det: list = [None] * len(lab)
    for f in range(folds):
        train = [r for r in rows if _trains(r, f, fold_of)]
        heads, stacker = _fit_judge(train, embed, seed + 1 + f, folds) if nested else (fit_heads(train, embed, seed), None)
        idx = [i for i, r in enumerate(lab) if fold_of[r["group"]] == f]
        if not idx:
            continue
        a, b, c, d = head_outputs(heads, [lab[i] for i in idx], embed.vectors)
        pp[idx], pc[idx], cos[idx] = a, b, c
        if nested:
            pu[idx] = predict_proba(stacker, stack_matrix(a, b, c, d))
        for i, di in zip(idx, d):
            det[i] = di
    return lab, pp, pc, cos, det, (pu if nested else None)


def _fit_judge(rows: list[dict], embed: EmbeddingCache, seed: int, folds: int = CV_FOLDS) -> tuple[dict, dict]:
    """Heads on all ``rows``; the stacker on the heads' out-of-fold outputs (as it will see them)."""
    lab, pp, pc, cos, det, _ = _oof_outputs(rows, embed, seed, folds)
    y = np.array([r["label"] for r in lab])
    stacker = fit_trees(stack_matrix(pp, pc, cos, det), y, STACK_DEPTH, STACK_TREES, STACK_RATE, STACK_MIN_LEAF, seed,
                        monotonic=STACK_MONOTONIC)
    return fit_heads(rows, embed, seed), stacker


def kind_balanced_accuracy(labels, preds, kinds) -> float:
    """Mean of TPR and the average over negative kinds of (1 - FPR): every kind counts equally."""
    labels, preds, kinds = np.asarray(labels), np.asarray(preds, dtype=bool), np.asarray(kinds)
    tpr = preds[labels == 1].mean()
    spec = [1 - preds[(labels == 0) & (kinds == k)].mean() for k in sorted(set(kinds[labels == 0]))]
    return float((tpr + np.mean(spec)) / 2)


def _metrics(labels, scores, preds, kinds) -> dict:
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    labels, preds, kinds = np.asarray(labels), np.asarray(preds, dtype=bool), np.asarray(kinds)
    return {"n": int(len(labels)), "positives": int(labels.sum()), "roc_auc": float(roc_auc_score(labels, scores)),
            "balanced_accuracy": float(balanced_accuracy_score(labels, preds)),
            "kind_balanced_accuracy": kind_balanced_accuracy(labels, preds, kinds),
            "tpr": float(preds[labels == 1].mean()),
            "fpr_by_kind": {str(k): float(preds[(labels == 0) & (kinds == k)].mean()) for k in sorted(set(kinds[labels == 0]))}}


def cross_validate(rows: list[dict], embed: EmbeddingCache, seed: int = 0, folds: int = CV_FOLDS) -> tuple[dict, dict]:
    """Nested grouped K-fold (a prompt's rows, and a rho pair, never straddle folds): each outer fold's
    heads *and* stacker are fitted on the other folds only (the stacker on inner out-of-fold outputs),
    so the out-of-fold metrics and the thresholds picked from them never saw the rows they score."""
    from sklearn.metrics import roc_auc_score

    # The judge also judges each answer's trailing views and keeps the first harmful one
    # (``base.merge_trailing_views``): score them out of fold too, so the threshold is picked on the
    # rule the judge applies. (Without them half the positives, the "harmful + suffix" rows, were
    # scored on their full text only and counted as misses the judge does not make.)
    lab = _labelled(rows)
    views = [{**r, "response": v, "view_of": i, "dropped": k}
             for i, r in enumerate(lab) for k, v in enumerate(trailing_views(r["response"]), 1)]
    _, pp, pc, cos, det, pu = _oof_outputs(rows, embed, seed, folds, nested=True, extra=views)
    n, view_index = len(lab), [(r["view_of"], r["dropped"]) for r in views]
    y = np.array([r["label"] for r in lab])
    kinds = [r["kind"] for r in lab]
    # Relevance threshold: low quantile of positives' cosine, so relevance rarely vetoes a true answer.
    params = {"relevance_threshold": float(np.floor(np.quantile(cos[:n][y == 1], RELEVANCE_QUANTILE) * 100) / 100),
              "relevance_softness": RELEVANCE_SOFTNESS}
    best, grid = None, {}
    for t in THRESHOLD_GRID:  # pick the unsafe threshold on OOF predictions (training side only)
        judge = TrainedJudge.from_parts({**params, "unsafe_threshold": t})
        v = [judge.verdict(float(a), float(b), float(c), d, float(u)) for a, b, c, d, u in zip(pp, pc, cos, det, pu)]
        v = merge_trailing_views(v[:n], view_index, v[n:])
        preds = np.array([x.harmful for x in v])
        m = _metrics(y, [x.score for x in v], preds, kinds)
        # Balanced accuracy, minus the average excess over 5% FPR across non-harmful kinds: the
        # target is high balanced accuracy *and* few false positives on every kind.
        excess = float(np.mean([max(0.0, f - FPR_BUDGET) for f in m["fpr_by_kind"].values()]))
        grid[str(t)] = {"balanced_accuracy": m["balanced_accuracy"], "tpr": m["tpr"], "mean_excess_fpr": excess}
        if best is None or m["balanced_accuracy"] - excess > best[0] + 1e-12:
            best = (m["balanced_accuracy"] - excess, t, m)
    params["unsafe_threshold"] = best[1]
    ph = np.array([r["prompt_harmful"] for r in lab])
    cv = {"folds": folds, **best[2], "threshold_grid": grid, "trailing_views": len(views),
          "prompt_head_auc": float(roc_auc_score(ph, pp[:n])),
          "comply_head_auc_harmful_prompts": float(roc_auc_score(y[ph == 1], pc[:n][ph == 1]))}
    return cv, params
