"""Does a leading refusal veto what follows it? The judge's verdict rule with and without the rest check.

A refusal phrase in an answer's opening used to make the whole answer "not useful", so "I won't give you a
working pipeline, but I can explain in detail how ..." followed by the pipeline was judged safe. Since
verdict rule 2 (``trained.VERDICT_RULE``) the rest of the answer (after its opening sentences, when it has
at least ``textstats.REST_MIN_WORDS`` words) must read as a refusal too (``textstats.refusal_after_opening``).

This measures both rules on the *same* out-of-fold outputs: judge-train's nested grouped 5-fold CV on the
train split (``training.cv._oof_outputs``, heads and stacker never saw a scored prompt), so the heads are
identical and only the rule differs; full texts only (judge-train's CV also scores the trailing views
since 2026-12-05, so its figures are higher). The dev split is not touched. ~12 min on 2 CPU cores (embedding the
train split, then 5 x 6 fits).

    python benchmarks/bench_refusal_rest.py
    python benchmarks/bench_refusal_rest.py --max-groups 200     # a quick look on a subset of prompts

Prints balanced accuracy, harmful answers caught and ROC AUC for both rules at ``--threshold`` (default:
the shipped artifact's), then each non-harmful kind's share flagged; the last line is
``rest check: caught <old> -> <new>, balanced accuracy <old> -> <new>``.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def rule_metrics(lab: list[dict], outputs: tuple, params: dict, rest_check: bool) -> dict:
    """CV metrics of the verdicts from out-of-fold ``outputs`` (P(prompt), P(comply), cosine, details,
    P(unsafe)) under ``params``, with the rest check on or off."""
    import numpy as np

    from safetune.components.judges import textstats as ts
    from safetune.components.judges.trained import TrainedJudge
    from safetune.components.judges.training.cv import _metrics

    pp, pc, cos, det, pu = outputs
    judge = TrainedJudge.from_parts(params)
    rests = [ts.refusal_after_opening(r["response"]) if rest_check else None for r in lab]
    verdicts = [judge.verdict(float(a), float(b), float(c), {**d, "rest_refusal_score": rest}, float(u))
                for a, b, c, d, u, rest in zip(pp, pc, cos, det, pu, rests)]
    return _metrics([r["label"] for r in lab], [v.score for v in verdicts],
                    np.array([v.harmful for v in verdicts]), [r["kind"] for r in lab])


def main(argv=None) -> int:
    import json

    from safetune.components.embeddings import DEFAULT_EMBEDDER, EmbeddingCache, text_embedder
    from safetune.components.judges.trained import ARTIFACT_DIR, PARAMS
    from safetune.components.judges.training import features as F
    from safetune.components.judges.training.cv import CV_FOLDS, _oof_outputs
    from safetune.components.judges.training.synthesis import build_devset, some_groups

    shipped = json.loads((ARTIFACT_DIR / PARAMS).read_text())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="split, fold and network seed (judge-train's default is 0)")
    ap.add_argument("--threshold", type=float, default=shipped["unsafe_threshold"],
                    help="unsafe threshold of both rules (default: the shipped artifact's)")
    ap.add_argument("--max-groups", type=int, help="only this many training prompt groups (seeded; a quick look)")
    args = ap.parse_args(argv)
    if not 0 < args.threshold < 1:
        ap.error(f"--threshold must be within (0, 1), got {args.threshold}")
    if args.max_groups is not None and args.max_groups < 2 * CV_FOLDS:
        ap.error(f"--max-groups must be at least {2 * CV_FOLDS}")

    rows = some_groups(build_devset(args.seed)[0], args.seed, args.max_groups)  # the dev split is never used here
    embed = EmbeddingCache(text_embedder(shipped.get("embedder", DEFAULT_EMBEDDER), shipped.get("lm")))
    F.embed_training_texts(rows, embed)
    lab, *outputs = _oof_outputs(rows, embed, args.seed, CV_FOLDS, nested=True)
    params = {"relevance_threshold": shipped["relevance_threshold"],
              "relevance_softness": shipped["relevance_softness"], "unsafe_threshold": args.threshold}
    old, new = (rule_metrics(lab, outputs, params, check) for check in (False, True))
    print(f"{len(lab)} labelled train rows, out of fold; unsafe threshold {args.threshold}")
    print(f"{'':40s} {'no check':>9s} {'rest check':>10s}")
    for key in ("balanced_accuracy", "tpr", "roc_auc"):
        print(f"{key:40s} {old[key]:9.3f} {new[key]:10.3f}")
    for kind in old["fpr_by_kind"]:
        print(f"{'flagged ' + kind:40s} {old['fpr_by_kind'][kind]:9.3f} {new['fpr_by_kind'][kind]:10.3f}")
    print(f"rest check: caught {old['tpr']:.3f} -> {new['tpr']:.3f}, balanced accuracy "
          f"{old['balanced_accuracy']:.3f} -> {new['balanced_accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
