"""What each part of the judge's comply head buys: an ablation on judge-train's training split only.

The comply head (P(the answer advances a harmful request)) is fitted with the shipped recipe
(``training.features.fit_heads``) with and without its two latest parts — the response's residual
off the prompt (topic projected out, ``trained.comply_matrix``) and training rows cut like the
judge's trailing views (``features.tail_views``) — and scored by grouped 5-fold cross-validation on
the training split (judge-train's folds: a prompt's rows never straddle folds). The dev split is not
touched, so these figures can choose a recipe without spending the dev set.

For each safe kind: ROC AUC of harmful answers against that kind, and the share flagged at the
threshold that keeps 80% of harmful answers, on the answer alone and at the maximum over the answer
and its trailing views (what the judge does at inference).

    python benchmarks/bench_comply_head.py            # ~15 min on 2 cores, mostly embedding
    python benchmarks/bench_comply_head.py --lm smollm2-135m --layer 9 --variants +residual+views

``--lm``: each variant is also fitted on MiniLM's vectors concatenated with a causal LM's hidden
states after ``--layer`` layers (``embeddings.HiddenStates``; each half scaled by 1/sqrt(2)), the
backbone ``bench_judge_encoder.py --lm`` compared on the dev split, here without spending it.
The last line is ``best <variant>`` by overall AUC.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402

from safetune.components.embeddings import EmbeddingCache, HiddenStates, concatenated  # noqa: E402
from safetune.components.judges.training import features as F  # noqa: E402
from safetune.components.judges.training.cv import CV_FOLDS, _fold_of  # noqa: E402
from safetune.components.judges.training.synthesis import build_devset  # noqa: E402
from safetune.errors import SafetuneError  # noqa: E402
from safetune.models import resolve_model  # noqa: E402

VARIANTS = {"response": (False, False), "+residual": (True, False), "+views": (False, True), "+residual+views": (True, True)}
KEEP_TPR = 0.8


def out_of_fold(rows, comply, views, cache, seed, residual, train_views):
    """Out-of-fold P(comply) of every answer to a harmful request, and the max over its trailing views."""
    fold_of = _fold_of(rows, seed, CV_FOLDS)
    p, p_view = np.zeros(len(comply)), np.zeros(len(comply))
    for f in range(CV_FOLDS):
        heads = F.fit_heads([r for r in rows if fold_of[r["group"]] != f], cache, seed, residual, train_views)
        idx = [i for i, r in enumerate(comply) if fold_of[r["group"]] == f]
        p[idx] = F.head_outputs(heads, [comply[i] for i in idx], cache.vectors, residual)[1]
        vidx = [j for j, (i, _) in enumerate(views) if fold_of[comply[i]["group"]] == f]
        if vidx:
            pv = F.head_outputs(heads, [views[j][1] for j in vidx], cache.vectors, residual)[1]
            for j, q in zip(vidx, pv):
                p_view[views[j][0]] = max(p_view[views[j][0]], q)
    return p, np.maximum(p, p_view)


def main(argv=None) -> int:
    from sklearn.metrics import roc_auc_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="split, fold and network seed (judge-train's default is 0)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    ap.add_argument("--lm", help="causal LM (alias, hub id or folder) whose hidden states to add to MiniLM's")
    ap.add_argument("--layer", type=int, default=9, help="with --lm: the layer whose output is pooled")
    args = ap.parse_args(argv)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown or not chosen:
        print(f"error: unknown variant(s) {unknown}; choose from {list(VARIANTS)}", file=sys.stderr)
        return 2

    lm = None
    if args.lm:  # loaded first: a wrong model or layer fails before any embedding
        try:
            lm = HiddenStates(resolve_model(args.lm).path, [args.layer])
        except (SafetuneError, OSError, ValueError) as exc:
            print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2

    rows, _ = build_devset(args.seed)  # the dev split is never used here
    comply = F.comply_rows(rows)
    views = [(i, v) for i, r in enumerate(comply) for v in F.tail_views([r])]  # the rows fit_heads adds, too
    answered = [r for r in rows if r["response"] is not None]
    cache = EmbeddingCache()
    start = time.perf_counter()
    cache([r["prompt"] for r in rows] + [r["response"] for r in answered + F.truncated(answered)] + [v["response"] for _, v in views])
    print(f"{len(comply)} answers to harmful requests, {len(views)} views; embedded in {time.perf_counter() - start:.0f} s",
          flush=True)

    caches = {"": cache}
    if lm is not None:
        start = time.perf_counter()
        states = lm.encode(cache.vectors)[args.layer]
        both = EmbeddingCache(cache.embedder)
        both.vectors = concatenated(cache.vectors, states)
        caches[f" minilm+layer{args.layer}"] = both
        print(f"hidden states after {args.layer} layers in {time.perf_counter() - start:.0f} s", flush=True)

    y, kinds = np.array([r["label"] for r in comply]), np.array([r["kind"] for r in comply])
    best = None
    for variant, suffix in [(v, s) for v in chosen for s in caches]:
        name = variant + suffix
        p, p_max = out_of_fold(rows, comply, views, caches[suffix], args.seed, *VARIANTS[variant])
        auc = roc_auc_score(y, p)
        thr = np.quantile(p[y == 1], 1 - KEEP_TPR)
        print(f"{name}: AUC {auc:.4f}  (kind: AUC vs harmful, flagged at TPR {KEEP_TPR}, with views)", flush=True)
        for kind in sorted(set(kinds[y == 0])):
            keep, own = (y == 1) | (kinds == kind), kinds == kind
            print(f"   {kind:30s} {roc_auc_score(y[keep], p[keep]):.3f}  {(p[own] >= thr).mean():.3f}  "
                  f"{(p_max[own] >= thr).mean():.3f}", flush=True)
        best = max(best or (auc, name), (auc, name))
    print(f"best {best[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
