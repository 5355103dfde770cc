"""The LM half of the comply head's answer vector read *given the request*: the embedded generator's hidden
states over "request then answer" in its chat form, pooled over the answer's tokens only, against the
shipped states of the answer alone. Grouped 5-fold CV on judge-train's training split (dev untouched).

Why measure it: the shipped head sees the request and the answer as two separate vectors (the request's
enters through the prompt head, the cosine and the residual), so whether an answer carries out *this*
request is inferred, never read. A causal LM reading the answer after the request could carry that in its
states, at the price of encoding the request again with every answer.

    python benchmarks/bench_conditioned_states.py        # ~16 min on 2 cores

Both variants are the shipped recipe (``bench_comply_head.py``'s ``+residual+views`` with MiniLM + the
LM after ``--layer`` layers); only the answer vectors' LM half differs. Prints the comply AUC and, per safe
kind, the share flagged (with views) at the threshold keeping 80% of harmful answers; last line
``best <variant>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from bench_comply_head import KEEP_TPR, out_of_fold  # noqa: E402

from safetune.components.embeddings import EmbeddingCache, HiddenStates, concatenated  # noqa: E402
from safetune.components.judges.trained import comply_matrix, text_features  # noqa: E402
from safetune.components.judges.training import features as F  # noqa: E402
from safetune.components.judges.training.synthesis import build_devset  # noqa: E402
from safetune.errors import SafetuneError  # noqa: E402
from safetune.models import resolve_model  # noqa: E402

SHIPPED_FEATURES = F.features


def conditioned_states(lm: HiddenStates, layer: int, pairs: set[tuple[str, str]], max_length: int) -> dict:
    """(request, answer) -> unit vector: the LM's normed states after ``layer`` layers over the ChatML
    "user: request / assistant: answer" text, mean-pooled over the answer's tokens (right padding)."""
    import torch

    def head(prompt: str) -> str:
        return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"

    out, ordered = {}, sorted(pairs, key=lambda pr: (len(pr[0]) + len(pr[1]), pr))
    with torch.inference_mode():
        for b in range(0, len(ordered), 32):
            chunk = ordered[b:b + 32]
            enc = lm.tokenizer([head(p) + r for p, r in chunk], return_tensors="pt", padding=True, truncation=True,
                               max_length=max_length, add_special_tokens=False)
            h = lm.body.norm(lm.body(**enc, output_hidden_states=True).hidden_states[layer])
            mask = enc["attention_mask"].float()
            for j, (p, _) in enumerate(chunk):  # the request's tokens are context, not the answer
                mask[j, :len(lm.tokenizer(head(p), add_special_tokens=False)["input_ids"])] = 0
            v = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
            out.update(zip(chunk, torch.nn.functional.normalize(v, dim=-1).numpy().astype(np.float32)))
    return out


def main(argv=None) -> int:
    from sklearn.metrics import roc_auc_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lm", default="smollm2-135m", help="causal LM with a ChatML template (the shipped judge's)")
    ap.add_argument("--layer", type=int, default=5, help="the layer whose output is pooled (the shipped judge's)")
    ap.add_argument("--max-length", type=int, default=192, help="tokens of request + answer (the answer alone gets 128)")
    ap.add_argument("--seed", type=int, default=0, help="split, fold and network seed (judge-train's default is 0)")
    args = ap.parse_args(argv)
    try:
        lm = HiddenStates(resolve_model(args.lm).path, [args.layer])
    except (SafetuneError, OSError, ValueError) as exc:  # a wrong model or layer fails before any embedding
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2

    rows, _ = build_devset(args.seed)  # the dev split is never used here
    comply = F.comply_rows(rows)
    views = [(i, v) for i, r in enumerate(comply) for v in F.tail_views([r])]
    answered = [r for r in rows if r["response"] is not None]
    start = time.perf_counter()
    minilm = EmbeddingCache()
    minilm([r["prompt"] for r in rows] + [r["response"] for r in answered + F.truncated(answered)] + [v["response"] for _, v in views])
    stacked = EmbeddingCache(minilm.embedder)
    stacked.vectors = concatenated(minilm.vectors, lm.encode(minilm.vectors)[args.layer])
    print(f"MiniLM and the LM's states of {len(minilm.vectors)} texts alone: {time.perf_counter() - start:.0f} s", flush=True)

    start = time.perf_counter()
    heard = comply + F.truncated(comply) + F.tail_views(comply)  # every answer a comply head fits or scores
    cond = conditioned_states(lm, args.layer, {(r["prompt"], r["response"]) for r in heard if r["response"].strip()},
                              args.max_length)
    print(f"the LM's states of {len(cond)} answers after their requests: {time.perf_counter() - start:.0f} s", flush=True)

    scale = np.float32(1 / np.sqrt(2.0))

    def conditioned_features(rs, vec, residual=True):
        """``features.features`` with each answer's LM half read after its request."""
        pe = np.stack([vec[r["prompt"]] for r in rs])
        re_ = np.stack([np.concatenate([minilm.vectors[r["response"]], cond[(r["prompt"], r["response"])]]) * scale
                        if r["response"].strip() else np.zeros(pe.shape[1], np.float32) for r in rs])
        cos = (pe * re_).sum(axis=1)
        tf = [text_features(r["prompt"], r["response"], c) for r, c in zip(rs, cos)]
        return pe, comply_matrix(re_, np.array([f for f, _ in tf], np.float32), pe if residual else None), cos, [d for _, d in tf]

    y, kinds = np.array([r["label"] for r in comply]), np.array([r["kind"] for r in comply])
    aucs = {}
    for name, feats in [("answer alone (shipped)", SHIPPED_FEATURES), ("answer after request", conditioned_features)]:
        F.features = feats  # fit_heads and head_outputs look it up in their module
        try:
            p, p_max = out_of_fold(rows, comply, views, stacked, args.seed, True, True)
        finally:
            F.features = SHIPPED_FEATURES
        aucs[name] = roc_auc_score(y, p)
        thr = np.quantile(p_max[y == 1], 1 - KEEP_TPR)
        print(f"{name}: AUC {aucs[name]:.4f} (with views {roc_auc_score(y, p_max):.4f}); flagged at TPR {KEEP_TPR}, with views:",
              flush=True)
        for kind in sorted(set(kinds[y == 0])):
            print(f"   {kind:30s} {(p_max[kinds == kind] >= thr).mean():.3f}", flush=True)
    print(f"best {max(aucs, key=aucs.get)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
