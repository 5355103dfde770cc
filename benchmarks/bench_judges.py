"""Judge and embedding throughput per 1,000 (prompt, response) pairs, batched vs one pair at a time.

Pairs come from the judge development set shipped with the package (no network). For each judge and
for the relevance embedder, the batched call (what a search does: one call per population, prompt
embeddings computed once) is timed against the same work done one pair per call, in the same run.

    python benchmarks/bench_judges.py                       # heuristic, safetune judges + relevance
    python benchmarks/bench_judges.py --pairs 500 --judge heuristic
    python benchmarks/bench_judges.py --judge safetune=OLD_ARTIFACT_DIR --judge safetune   # two judges, one run

A judge over stacked vectors (sentence + LM states) is also timed with the pairs' sentence vectors
handed in, as the evaluator does in a search (it has them for relevance), cold and with the prompts seen
before (a search's later candidates answer the same prompts: the LM half of a prompt is kept). Every other
timed call starts cold (the LM memo emptied).

The last lines are ``<name> batched <S> s per 1000 pairs, one-by-one <S> s per 1000, ratio <R>``, then
for each judge that judges trailing views, the same batched call without them and the cost ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

from safetune.components.embeddings import Embedder  # noqa: E402
from safetune.components.judges.base import get_judge  # noqa: E402
from safetune.components.judges.training.data import DEVSET  # noqa: E402


def load_pairs(n: int) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in DEVSET.read_text().splitlines() if line.strip()]
    rows = (rows * (n // max(1, len(rows)) + 1))[:n]
    return [r["prompt"] for r in rows], [r["response"] for r in rows]


def per_1000(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000 / n


def cold(judge):
    """The judge as a fresh process has it: a stacked embedder's memo of LM vectors emptied."""
    forget = getattr(getattr(judge, "embedder", None), "forget", None)
    if forget is not None:
        forget()
    return judge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1000, help="pairs for the batched calls")
    ap.add_argument("--single-pairs", type=int, default=100, help="pairs for the one-by-one baseline")
    ap.add_argument("--judge", action="append", default=None, help="judge names (default: heuristic, safetune)")
    args = ap.parse_args()
    prompts, responses = load_pairs(args.pairs)
    sp, sr = prompts[: args.single_pairs], responses[: args.single_pairs]

    lines, views = [], []
    embedder = Embedder()
    embedder.pairs(prompts[:2], responses[:2])  # load the embedder: not timed
    batched = per_1000(lambda: embedder.pairs(prompts, responses).cosine, len(prompts))
    single = per_1000(lambda: [embedder.pairs([p], [r]).cosine for p, r in zip(sp, sr)], len(sp))
    lines.append(("relevance", batched, single))
    for name in args.judge or ["heuristic", "safetune"]:
        judge = get_judge(name)
        judge.judge(prompts[:2], responses[:2])  # load weights and embedder: not timed
        batched = per_1000(lambda: cold(judge).judge(prompts, responses), len(prompts))
        single = per_1000(lambda: [cold(judge).judge([p], [r]) for p, r in zip(sp, sr)], len(sp))
        lines.append((name, batched, single))
        if getattr(judge.embedder, "base", None) is not None:  # stacked vectors: a search hands in the sentence half
            handed = embedder.pairs(prompts, responses)  # the evaluator's relevance vectors: not the judge's cost
            lines.append((f"{name} (sentence vectors handed in, as in a search)",
                          per_1000(lambda: cold(judge).judge(prompts, responses, vectors=handed), len(prompts)), None))
            # After a search's first candidate the judge has seen the prompts (every candidate answers the same).
            cold(judge).embedder.lm_vectors([p for p in prompts if p.strip()])
            lines.append((f"{name} (sentence vectors handed in, prompts seen before: a search's later candidates)",
                          per_1000(lambda: judge.judge(prompts, responses, vectors=handed), len(prompts)), None))
        if judge.judges_trailing_views:  # what judging the trailing views costs (issue 11: within ~2x)
            judge.judges_trailing_views = False
            without = per_1000(lambda: cold(judge).judge(prompts, responses), len(prompts))
            judge.judges_trailing_views = True
            views.append((name, without, batched))

    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {len(prompts)} pairs batched, {len(sp)} one by one")
    for name, batched, single in lines:
        print(f"{name} batched {batched:.1f} s per 1000 pairs" + ("" if single is None else
              f", one-by-one {single:.1f} s per 1000, ratio {single / batched:.2f}"))
    for name, without, with_views in views:
        print(f"{name} without trailing views {without:.1f} s per 1000 pairs, with {with_views:.1f} s, "
              f"cost of the views {with_views / without:.2f}x")


if __name__ == "__main__":
    main()
