"""Fine-tuning the sentence encoder itself: MiniLM as a (request, answer) cross-encoder against the judge's
comply head, on one fold of judge-train's grouped CV (training split only; the dev split is not touched).

The shipped comply head reads frozen vectors (MiniLM's, stacked with SmolLM2's hidden states) of the request
and the answer separately. A cross-encoder reads both in one pass, so attention can ask "does this answer
carry out *that* request" directly; the price is training the encoder (22M weights) on a few thousand
labelled answers. Both are fitted on the same rows (answers to harmful requests of the other four folds,
plus their first-40-word truncations, as ``training.features.fit_heads`` does) and scored on the held-out
fold: ROC AUC of harmful answers against all safe ones, and per safe kind the share flagged at the
threshold that keeps 80% of harmful answers (with the max over trailing views, as the judge does).

    python benchmarks/bench_cross_encoder.py --fold 0 --epochs 3     # ~35 min on 2 cores

"mean" averages the two scores. The last line is ``best <name>`` by AUC.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402

from safetune.components.embeddings import DEFAULT_EMBEDDER, EmbeddingCache, resolve_embedder_path, text_embedder  # noqa: E402
from safetune.components.judges.base import trailing_views  # noqa: E402
from safetune.components.judges.trained import ARTIFACT_DIR, PARAMS  # noqa: E402
from safetune.components.judges.training import features as F  # noqa: E402
from safetune.components.judges.training.cv import CV_FOLDS, _fold_of, _trains  # noqa: E402
from safetune.components.judges.training.synthesis import build_devset  # noqa: E402

KEEP_TPR = 0.8
# Fine-tuning knobs: the usual ones for a BERT-size pair classifier (linear warm-up over 10% of the
# steps, then linear decay); 160 tokens hold the request and the first ~120 words of the answer.
MAX_LENGTH, BATCH, LR, WEIGHT_DECAY = 160, 16, 4e-5, 0.01


def fine_tune(train: list[dict], epochs: int, seed: int):
    """MiniLM with a one-logit head, trained with class-balanced BCE; returns a scorer of rows."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer


    torch.manual_seed(seed)
    rng = random.Random(seed)
    path = resolve_embedder_path(DEFAULT_EMBEDDER)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)

    def encode(batch):
        return tok([r["prompt"] for r in batch], [r["response"] for r in batch], truncation=True,
                   max_length=MAX_LENGTH, padding=True, return_tensors="pt")

    y = torch.tensor([float(r["label"]) for r in train])
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=(len(y) - y.sum()) / y.sum())
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps = epochs * -(-len(train) // BATCH)
    warm = max(1, int(0.1 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(s / warm, max(0.0, (steps - s) / (steps - warm))))
    model.train()
    step, start = 0, time.perf_counter()
    for _ in range(epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for b in range(0, len(order), BATCH):
            idx = order[b:b + BATCH]
            loss = loss_fn(model(**encode([train[i] for i in idx])).logits[:, 0], y[idx])
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 100 == 0 or step == steps:
                print(f"  fine-tuning step {step}/{steps}, {time.perf_counter() - start:.0f} s", flush=True)
    model.eval()

    def score(rows: list[dict]) -> np.ndarray:
        with torch.no_grad():
            parts = [torch.sigmoid(model(**encode(rows[b:b + 32])).logits[:, 0]).numpy() for b in range(0, len(rows), 32)]
        return np.concatenate(parts) if parts else np.zeros(0)
    return score


def with_views(score, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the answers and their max over the answers' trailing views."""
    views = [(i, {**r, "response": v}) for i, r in enumerate(rows) for v in trailing_views(r["response"])]
    p = score(rows)
    p_max = p.copy()
    for (i, _), q in zip(views, score([v for _, v in views])):
        p_max[i] = max(p_max[i], q)
    return p, p_max


def main(argv=None) -> int:
    from sklearn.metrics import roc_auc_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fold", type=int, default=0, help=f"held-out fold, 0..{CV_FOLDS - 1}")
    ap.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs")
    ap.add_argument("--seed", type=int, default=0, help="split, fold and network seed (judge-train's default is 0)")
    args = ap.parse_args(argv)
    if not 0 <= args.fold < CV_FOLDS or args.epochs < 1:
        print(f"error: --fold must be in 0..{CV_FOLDS - 1} and --epochs >= 1", file=sys.stderr)
        return 2

    rows, _ = build_devset(args.seed)  # the dev split is never used here
    fold_of = _fold_of(rows, args.seed, CV_FOLDS)
    comply = F.comply_rows(rows)
    train = [r for r in comply if _trains(r, args.fold, fold_of)]
    test = [r for r in comply if fold_of[r["group"]] == args.fold]
    print(f"{len(train)} training answers (+ {len(F.truncated(train))} truncations), {len(test)} held out", flush=True)

    start = time.perf_counter()  # the shipped recipe: heads on the shipped judge's frozen vectors
    shipped = json.loads((ARTIFACT_DIR / PARAMS).read_text())
    cache = EmbeddingCache(text_embedder(shipped.get("embedder", DEFAULT_EMBEDDER), shipped.get("lm")))
    F.embed_training_texts(train + test, cache)
    heads = F.fit_heads([r for r in rows if _trains(r, args.fold, fold_of)], cache, args.seed)
    scores = {"comply head": with_views(lambda rs: F.head_outputs(heads, rs, cache(r["response"] for r in rs))[1], test)}
    print(f"comply head: embedded and fitted in {time.perf_counter() - start:.0f} s", flush=True)

    start = time.perf_counter()
    scores["cross-encoder"] = with_views(fine_tune(train + F.truncated(train), args.epochs, args.seed), test)
    print(f"cross-encoder: fine-tuned and scored in {time.perf_counter() - start:.0f} s", flush=True)
    scores["mean"] = tuple((a + b) / 2 for a, b in zip(scores["comply head"], scores["cross-encoder"]))

    y, kinds = np.array([r["label"] for r in test]), np.array([r["kind"] for r in test])
    safe_kinds = sorted(set(kinds[y == 0]))
    print(f"\nfold {args.fold}, {args.epochs} epochs: AUC, then per kind the share flagged at TPR {KEEP_TPR} "
          f"(with views)\n{'kind':32s}" + "".join(f"{n:>16s}" for n in scores))
    print(f"{'AUC (answers)':32s}" + "".join(f"{roc_auc_score(y, p):16.4f}" for p, _ in scores.values()))
    print(f"{'AUC (with views)':32s}" + "".join(f"{roc_auc_score(y, pm):16.4f}" for _, pm in scores.values()))
    for kind in safe_kinds:
        own = kinds == kind
        cells = "".join(f"{(pm[own] >= np.quantile(pm[y == 1], 1 - KEEP_TPR)).mean():16.3f}" for _, pm in scores.values())
        print(f"{kind[:26] + f' ({own.sum()})':32s}{cells}")
    print(f"best {max(scores, key=lambda n: roc_auc_score(y, scores[n][0]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
