"""Per-row decoding (``PerRowDecoding.choose``): this tree's against another revision's, same run.

``choose`` runs once per decode step over the whole vocabulary of every row, so for a model with a
large vocabulary it is a visible share of the engine's time (``bench_generation.py --profile``: per-row
decoding). This loads ``safetune/components/sampling.py`` as of ``--against`` (``git show``) beside the
current one and

- draws from both on random batches of mixed knobs (greedy and sampled rows, top-k, top-p, penalties,
  n-gram bans, left padding), step by step, and counts the tokens that differ (a change meant to be
  exact must print 0) and whether the raw log-probabilities match;
- times ``choose`` at 32 rows for vocabularies of SmolLM2 (49,152), Qwen2.5 (151,936) and Qwen3.5
  (248,320), on the main job's first population of knobs, best of 5 interleaved runs each.

    python benchmarks/bench_sampling.py --against 1bb383b

The last lines are ``vocabulary <V>: against <ms> ms, current <ms> ms per step, ratio <R>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_matmul import int_list  # this folder is the script's sys.path[0]

ROOT = Path(__file__).resolve().parent.parent


def load_revision(rev: str):
    """The sampling module as of git revision ``rev``, imported under another name."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:safetune/components/sampling.py"],
                                check=True, capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        reason = (getattr(exc, "stderr", "") or str(exc)).strip()
        print(f"error: cannot read sampling.py at {rev!r}: {reason}", file=sys.stderr)
        sys.exit(2)
    path = Path(tempfile.mkdtemp()) / "sampling_against.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("sampling_against", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_configs(rng: random.Random, rows: int):
    from safetune.config import DecodingConfig

    out = []
    for _ in range(rows):
        penalty, ngram = rng.choice([1.0, 1.3, 0.8]), rng.choice([0, 1, 2, 4])
        if rng.random() < 0.3:
            out.append(DecodingConfig(temperature=0.0, repetition_penalty=penalty, no_repeat_ngram_size=ngram))
        else:
            out.append(DecodingConfig(temperature=rng.uniform(0.1, 1.8), top_k=rng.choice([0, 0, 5, 40, 90]),
                                      top_p=rng.choice([1.0, 0.9, 0.5, 0.99]), repetition_penalty=penalty,
                                      no_repeat_ngram_size=ngram))
    return out


def compare_draws(a_mod, b_mod, trials: int, steps: int = 12, seed: int = 0) -> tuple[int, int, bool]:
    """(tokens that differ, tokens drawn, raw log-probabilities equal) over random batches."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    differ = total = 0
    logprobs_equal = True
    for _ in range(trials):
        rows, vocab = rng.choice([1, 5, 17, 32]), rng.choice([50, 1000, 5000])
        configs = random_configs(rng, rows)
        seeds = [rng.randrange(1000) for _ in range(rows)]
        pads = torch.tensor([rng.randrange(3) for _ in range(rows)])
        a = a_mod.PerRowDecoding(configs, seeds, 6, pads, 0)
        b = b_mod.PerRowDecoding(configs, seeds, 6, pads, 0)
        ids = torch.randint(0, vocab, (rows, 6))
        for _ in range(steps):
            logits = torch.randn(rows, vocab) * rng.choice([1, 3, 8])
            ca, cb = a.choose(ids, logits.clone()), b.choose(ids, logits.clone())
            differ += int((ca != cb).sum())
            total += rows
            ids = torch.cat([ids, ca[:, None]], dim=1)
        logprobs_equal &= a.raw_logprobs == b.raw_logprobs
    return differ, total, logprobs_equal


def time_choose(mods: dict, vocab: int, rows: int = 32, steps: int = 20, repeats: int = 5) -> dict[str, float]:
    """Best ms per ``choose`` call per module, interleaved, on the default space's first population."""
    from safetune.config import SearchSpace
    from safetune.search.base import initial_population

    space = SearchSpace()
    xl, xu = space.bounds()
    population = [space.decode(x) for x in initial_population(xl, xu, 8, 0)]
    configs = [population[i % len(population)] for i in range(rows)]
    ids = torch.randint(0, vocab, (rows, 120), generator=torch.Generator().manual_seed(0))
    logits = torch.randn(rows, vocab, generator=torch.Generator().manual_seed(1)) * 3
    best = {name: float("inf") for name in mods}
    for _ in range(repeats):
        for name, mod in mods.items():
            d = mod.PerRowDecoding(configs, list(range(rows)), 60, torch.zeros(rows, dtype=torch.long), 0)
            d.choose(ids, logits)  # warm-up
            start = time.perf_counter()
            for _ in range(steps):
                d.choose(ids, logits)
            best[name] = min(best[name], (time.perf_counter() - start) / steps * 1e3)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", required=True, help="git revision whose sampling.py to compare with")
    ap.add_argument("--trials", type=int, default=60, help="random batches for the draw comparison")
    ap.add_argument("--vocab", type=int_list, default="49152,151936,248320",
                    help="comma-separated vocabulary sizes to time")
    args = ap.parse_args()
    from safetune.components import sampling as current

    against = load_revision(args.against)
    differ, total, logprobs_equal = compare_draws(against, current, args.trials)
    print(f"draws: {differ} of {total} tokens differ from {args.against}; raw log-probabilities "
          f"{'identical' if logprobs_equal else 'DIFFER'}")
    for vocab in args.vocab:
        ms = time_choose({"against": against, "current": current}, vocab)
        print(f"vocabulary {vocab}: against {ms['against']:.2f} ms, current {ms['current']:.2f} ms per step, "
              f"ratio {ms['against'] / ms['current']:.2f}")


if __name__ == "__main__":
    main()
