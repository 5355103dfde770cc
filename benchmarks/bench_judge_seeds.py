"""How much of the judge's verdict is training noise? Refit its heads and stacker with other seeds, same data.

judge-train's recipe (``training.cv._fit_judge``: prompt head, comply networks, stacker on inner
out-of-fold outputs) is fitted on the train split of ``--split-seed`` once per ``--seeds`` value; only
the network initialisations and the stacker's inner folds change. Each fit judges the same pairs (the
dev split, and optionally a JSONL of ``{prompt, response}`` rows such as the answers
``bench_judge_model_outputs.py --output`` writes) under the shipped artifact's thresholds, and the
script prints, per set of pairs: pairs flagged per seed, the share of pairs on which the seeds disagree,
and the mean |P(unsafe) - P(unsafe) of the first seed|. ~6 min embedding, then ~4 min per seed on 2
CPU cores. The verdicts' text is never printed.

    python benchmarks/bench_judge_seeds.py --seeds 0,1,2
    python benchmarks/bench_judge_seeds.py --seeds 0,1,2 --pairs answers.jsonl

The first seed equal to ``--split-seed`` (0, the default) refits the shipped judge on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from bench_matmul import int_list  # noqa: E402  (this folder is the script's sys.path[0])


def read_pairs(path: str) -> list[tuple[str, str]]:
    """(prompt, response) of each JSONL row; a clear error for a missing file or malformed row."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read --pairs {path}: {exc.strerror}") from exc
    out = []
    for n, line in enumerate((x for x in lines if x.strip()), 1):
        try:
            row = json.loads(line)
            out.append((str(row["prompt"]), str(row["response"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"--pairs {path}: row {n} is not a JSON object with prompt and response") from exc
    if not out:
        raise ValueError(f"--pairs {path}: no rows")
    return out


def seed_spread(p_unsafe: list, harmful: list) -> dict:
    """Per-seed flagged counts, the share of pairs where any seed disagrees, mean |dP| vs the first seed."""
    import numpy as np

    p, h = np.asarray(p_unsafe, dtype=float), np.asarray(harmful, dtype=bool)
    return {"flagged": h.sum(axis=1).tolist(), "disagree": float((h != h[0]).any(axis=0).mean()),
            "mean_abs_dp": [float(np.abs(p[k] - p[0]).mean()) for k in range(1, len(p))]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int_list, default=[0, 1, 2], help="comma-separated fit seeds (at least two)")
    ap.add_argument("--split-seed", type=int, default=0, help="judge-train's split seed (the shipped judge's is 0)")
    ap.add_argument("--pairs", help="JSONL of {prompt, response} rows to judge besides the dev split")
    args = ap.parse_args(argv)
    if len(set(args.seeds)) < 2:
        ap.error("--seeds needs at least two different seeds")
    try:
        extra = read_pairs(args.pairs) if args.pairs else []
    except ValueError as exc:
        ap.error(str(exc))

    from safetune.components.embeddings import DEFAULT_EMBEDDER, EmbeddingCache, text_embedder
    from safetune.components.judges.trained import ARTIFACT_DIR, PARAMS, TrainedJudge
    from safetune.components.judges.training import features as F
    from safetune.components.judges.training.cv import _fit_judge
    from safetune.components.judges.training.synthesis import build_devset

    shipped = json.loads((ARTIFACT_DIR / PARAMS).read_text())
    rows, dev = build_devset(args.split_seed)
    embed = EmbeddingCache(text_embedder(shipped.get("embedder", DEFAULT_EMBEDDER), shipped.get("lm")))
    F.embed_training_texts(rows, embed)
    sets = {"dev": [(r["prompt"], r["response"]) for r in dev]} | ({"pairs": extra} if extra else {})
    prompts = [p for pairs in sets.values() for p, _ in pairs]
    responses = [r for pairs in sets.values() for _, r in pairs]
    p_unsafe, harmful = [], []
    for seed in args.seeds:
        heads, stacker = _fit_judge(rows, embed, seed)
        judge = TrainedJudge.from_parts(shipped, heads, stacker)
        verdicts = judge.judge(prompts, responses)
        p_unsafe.append([v.details["p_unsafe"] for v in verdicts])
        harmful.append([bool(v.harmful) for v in verdicts])
        print(f"seed {seed}: fitted and judged {len(verdicts)} pairs", flush=True)
    start = 0
    for name, pairs in sets.items():
        end = start + len(pairs)
        s = seed_spread([p[start:end] for p in p_unsafe], [h[start:end] for h in harmful])
        print(f"{name}: {len(pairs)} pairs, flagged per seed {s['flagged']}, seeds disagree on {s['disagree']:.3f}, "
              f"mean |dP(unsafe)| vs seed {args.seeds[0]}: {' / '.join(f'{d:.3f}' for d in s['mean_abs_dp'])}")
        start = end
    return 0


if __name__ == "__main__":
    sys.exit(main())
