"""Generation throughput: safetune's engine vs a naive per-prompt ``generate`` loop, same run.

The workload is what a search generation asks for: a population of candidates (Latin-hypercube
draws from the default search space, each with its own decoding knobs and system prompt) times a
set of prompts. Four ways to answer it, on the same model in the same process:

- engine: safetune's TransformersEngine (one call per population; rows of a batch keep their own
  candidate's knobs, so batches span candidates; bucketed by token budget, system prompt and prompt
  length; each system prompt's prefix prefilled once per batch);
- engine, whole prompts: the same without prefix sharing (every row prefills its whole prompt);
- engine, stock linears: the engine with ``F.linear`` on plain weights (bfloat16 CPU weights are
  otherwise packed once for oneDNN, safetune.components.packed_linear; the same bits, checked here);
- per-candidate: transformers' ``generate`` batched per candidate (one GenerationConfig per call),
  which is what the engine did before per-row decoding;
- naive: one chat-templated prompt at a time with the candidate's GenerationConfig.

Per-candidate and naive run on plain (unpacked) weights: what a script without the engine gets.

The engine's cache is off so it really generates; each method runs ``--repeats`` times (default 2)
and its best run counts, so no method is charged for first-call kernel setup. Tokens/s counts the new tokens each response kept
(up to its stop token or its budget). The naive loop is slow, so it is timed on a subset.

    python benchmarks/bench_generation.py                        # embedded default model
    python benchmarks/bench_generation.py --model /path/to/model --candidates 8 --prompts 16

The last lines are ``engine <N> tokens/s``, ``naive <N> tokens/s``, ``ratio <R>`` (engine / naive)
and ``roofline <R>``: the engine's tokens/s over the machine's limit for this model, measured in the
same run as (matrix-multiply FLOP/s at the decode batch shape, in the engine's dtype, the faster of plain
and pre-packed weights) / (FLOPs per
generated token = 2 x the weights a token multiplies, the LM head included). ``--profile`` adds the
engine's hottest functions (cProfile) and, from one more run, its time split between prefill forwards,
decode forwards, per-row decoding and the rest. ``--compare-batch-size M`` counts the engine's responses
that are identical when the same requests run in batches of M (a cached answer is bit-identical only
where that count is all of them).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_matmul import matmul_flops  # noqa: E402 - this folder is the script's sys.path[0]
from safetune.components.engines.transformers import TransformersEngine  # noqa: E402
from safetune.components.generation import GenerationRequest, render_chat  # noqa: E402
from safetune.components.packed_linear import pack_linears, unpack_linears  # noqa: E402
from safetune.config import SearchSpace  # noqa: E402
from safetune.datasets import load_prompt_sets, sample, split  # noqa: E402
from safetune.models import resolve_model  # noqa: E402
from safetune.search.base import initial_population  # noqa: E402


def kept_tokens(ids: list[int], stop_ids, limit: int) -> int:
    ids = ids[:limit]
    return next((i for i, t in enumerate(ids) if t in stop_ids), len(ids))


def per_candidate(engine: TransformersEngine, work, batch_size: int) -> int:
    """transformers' batched generate, one GenerationConfig (one candidate) per call."""
    module, tok = engine.module, engine.tokenizer
    total = 0
    by_config: dict = {}
    for config, prompt in work:
        by_config.setdefault(config, []).append(prompt)
    for config, prompts in by_config.items():
        gc = module.generation_config(config)
        for start in range(0, len(prompts), batch_size):
            texts = [render_chat(tok, p, config.system_prompt_text, module.template_kwargs)
                     for p in prompts[start:start + batch_size]]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                out = module.model.generate(**enc, generation_config=gc)
            for row in out[:, enc["input_ids"].shape[1]:].tolist():
                total += kept_tokens(row, module.stop_ids, config.max_new_tokens)
    return total


def naive_loop(engine: TransformersEngine, work) -> int:
    """What a first script does: one chat-templated prompt at a time, no batching, no cache."""
    module, tok = engine.module, engine.tokenizer
    total = 0
    for config, prompt in work:
        text = render_chat(tok, prompt, config.system_prompt_text, module.template_kwargs)
        enc = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = module.model.generate(**enc, generation_config=module.generation_config(config))
        total += kept_tokens(out[0, enc["input_ids"].shape[1]:].tolist(), module.stop_ids, config.max_new_tokens)
    return total


REPEATS = 2


def flops_per_token(model) -> float:
    """2 x the weights each generated token is multiplied by: every linear layer and the LM head
    (the input embedding is a lookup, not a matmul; a tied head is counted once, as the head)."""
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    body = total - emb.numel() - (0 if head is emb else head.numel())
    return 2.0 * (body + head.numel())


def time_split(engine: TransformersEngine, requests) -> dict:
    """Seconds of one engine run spent in prefill forwards (more than one position per row), decode
    forwards (one position) and per-row decoding (``PerRowDecoding.choose``), and the total."""
    import functools

    from safetune.components.sampling import PerRowDecoding

    model, split = engine.module.model, {"prefill": 0.0, "decode": 0.0, "sampling": 0.0}
    rows = [0]  # rows through decode forwards
    forward, choose = model.forward, PerRowDecoding.choose

    @functools.wraps(forward)  # keeps the signature: the engine inspects it for logits_to_keep
    def timed_forward(*args, **kwargs):
        start = time.perf_counter()
        out = forward(*args, **kwargs)
        one = kwargs["input_ids"].shape[1] == 1
        split["decode" if one else "prefill"] += time.perf_counter() - start
        rows[0] += kwargs["input_ids"].shape[0] if one else 0
        return out

    def timed_choose(self, *args):
        start = time.perf_counter()
        out = choose(self, *args)
        split["sampling"] += time.perf_counter() - start
        return out

    model.forward, PerRowDecoding.choose = timed_forward, timed_choose
    try:
        start = time.perf_counter()
        engine.generate(requests)
        split["total"] = time.perf_counter() - start
    finally:
        del model.forward  # the instance attribute: the class's forward again
        PerRowDecoding.choose = choose
    split["other"] = split["total"] - split["prefill"] - split["decode"] - split["sampling"]
    split["decode_rows"] = rows[0]
    return split


def timed(fn, *args) -> tuple[int, float]:
    """Best of REPEATS runs: the first run of a shape pays one-time kernel setup (oneDNN primitives),
    which a search pays once and then reuses for every later generation."""
    best = None
    for _ in range(REPEATS):
        start = time.perf_counter()
        tokens = fn(*args)
        elapsed = time.perf_counter() - start
        if best is None or tokens / elapsed > best[0] / best[1]:
            best = (tokens, elapsed)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dataset", default="harmbench-standard")
    ap.add_argument("--candidates", type=int, default=8, help="population size (distinct configurations)")
    ap.add_argument("--prompts", type=int, default=16, help="prompts per candidate")
    ap.add_argument("--batch-size", type=int, default=64, help="engine batch size")
    ap.add_argument("--baseline-batch-size", type=int, default=16, help="per-candidate batch size")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--naive-requests", type=int, default=16, help="the naive loop is slow: time it on a subset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each method; the best counts")
    ap.add_argument("--dtype", default="auto", help="weights' dtype for all three (auto: as the engine picks)")
    ap.add_argument("--profile", action="store_true", help="print the engine's hottest functions (cProfile) and its time split")
    ap.add_argument("--compare-batch-size", type=int, default=0,
                    help="also generate at this batch size and count the responses identical to the first run's "
                         "(all of them in float32; in bfloat16 a batch's shape changes rounding)")
    args = ap.parse_args()

    global REPEATS
    REPEATS = max(1, args.repeats)
    ref = resolve_model(args.model)
    prompts = [it.prompt for it in sample(split(load_prompt_sets((args.dataset,)), "search"), args.prompts, seed=0).items]
    space = SearchSpace()
    xl, xu = space.bounds()
    configs = [space.decode(x) for x in initial_population(xl, xu, args.candidates, args.seed)]
    configs = [type(c)(**{**c.to_dict(), "max_new_tokens": args.max_new_tokens}) for c in configs]
    work = [(c, p) for c in configs for p in prompts]
    engine = TransformersEngine(ref, cache=None, batch_size=args.batch_size, dtype=args.dtype)

    # Warm-up (first-call allocations), not timed.
    engine.generate([GenerationRequest(0, prompts[0], configs[0], 0, 0)])

    requests = [GenerationRequest(i, p, c, args.seed, 0) for i, (c, p) in enumerate(work)]
    def kept_in(out: list):
        """A timed engine run over ``requests`` that keeps its responses in ``out``."""
        def run() -> int:
            out[:] = engine.generate(requests)
            return sum(g.new_tokens for g in out)
        return run

    last: list = []  # the timed runs' responses, for --compare-batch-size and the packed/stock check
    engine_tokens, engine_s = timed(kept_in(last))
    if args.compare_batch_size:
        engine.batch_size = args.compare_batch_size  # same weights, other batches
        same = sum(a.response == b.response for a, b in zip(last, engine.generate(requests)))
        engine.batch_size = args.batch_size
        print(f"identical responses at batch {args.batch_size} and {args.compare_batch_size}: {same} of {len(last)} "
              f"({engine.dtype})")
    engine.module.share_prefix = False
    whole_tokens, whole_s = timed(lambda: sum(g.new_tokens for g in engine.generate(requests)))
    engine.module.share_prefix = True
    model = engine.module.model
    packed = unpack_linears(model)  # from here on plain weights, until the profile
    if packed:
        stock: list = []
        stock_tokens, stock_s = timed(kept_in(stock))
        same_packed = sum(a.response == b.response for a, b in zip(last, stock))
    base_tokens, base_s = timed(per_candidate, engine, work, args.baseline_batch_size)
    # The naive subset takes every candidate in turn so it sees the same mix of knobs.
    rng = np.random.default_rng(args.seed)
    subset = [work[i] for i in sorted(rng.choice(len(work), size=min(args.naive_requests, len(work)), replace=False))]
    naive_tokens, naive_s = timed(naive_loop, engine, subset)

    engine_tps, base_tps, naive_tps = engine_tokens / engine_s, base_tokens / base_s, naive_tokens / naive_s
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; weights {engine.dtype} for all three")
    print(f"model: {ref.model_id} ({ref.revision}); {len(configs)} candidates x {len(prompts)} prompts; "
          f"engine batch {args.batch_size}, per-candidate batch {args.baseline_batch_size}; "
          f"max_new_tokens {args.max_new_tokens}; naive on {len(subset)} requests; best of {REPEATS}")
    print(f"per-candidate {base_tps:.1f} tokens/s ({base_tokens} tokens in {base_s:.1f} s)")
    print(f"engine, whole prompts {whole_tokens / whole_s:.1f} tokens/s ({whole_tokens} tokens in {whole_s:.1f} s)")
    print(f"engine {engine_tps:.1f} tokens/s ({engine_tokens} tokens in {engine_s:.1f} s); "
          f"prefix sharing {engine_tps / (whole_tokens / whole_s):.2f}x")
    if packed:
        print(f"engine, stock linears {stock_tokens / stock_s:.1f} tokens/s ({stock_tokens} tokens in {stock_s:.1f} s); "
              f"packed weights {engine_tps / (stock_tokens / stock_s):.2f}x ({packed} layers; identical responses "
              f"{same_packed} of {len(last)})")
    else:
        print(f"engine, stock linears: nothing packed ({engine.dtype} on this CPU)")
    print(f"naive {naive_tps:.1f} tokens/s ({naive_tokens} tokens in {naive_s:.1f} s)")
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    dtype = getattr(torch, engine.dtype)
    packed_rate = matmul_flops(args.batch_size, cfg.hidden_size, cfg.intermediate_size, dtype, packed=True)
    peak = max(matmul_flops(args.batch_size, cfg.hidden_size, cfg.intermediate_size, dtype), packed_rate)
    kernel = "best of plain and packed weights" if packed_rate else "plain weights; packing n/a"
    limit = peak / flops_per_token(model)
    pack_linears(model, rows=args.batch_size)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(lambda: engine.generate(requests))
        print("engine profile (top 15 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        shares = time_split(engine, requests)
        total, decode_rows = shares.pop("total"), shares.pop("decode_rows")
        print("engine time split: " + ", ".join(f"{k} {v:.1f} s ({v / total:.0%})" for k, v in shares.items())
              + f"; total {total:.1f} s")
        rate = decode_rows / shares["decode"]
        print(f"decode forwards alone: {rate:.1f} rows/s, {rate / limit:.2f} of the limit")
    print(f"matmul {peak / 1e9:.0f} GFLOP/s at {args.batch_size} x {cfg.hidden_size} x {cfg.intermediate_size} "
          f"({engine.dtype}, {kernel}); {flops_per_token(model) / 1e6:.0f} MFLOP per token; limit {limit:.0f} tokens/s")
    print(f"ratio {engine_tps / naive_tps:.2f}")
    print(f"roofline {engine_tps / limit:.2f}")


if __name__ == "__main__":
    main()
