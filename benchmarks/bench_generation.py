"""Generation throughput: safetune's engine vs a naive per-prompt ``generate`` loop, same run.

Same model, prompts and decoding settings for both; the engine's cache is off so it really
generates. Tokens/s counts the new tokens each response actually kept (up to its stop token).

    python benchmarks/bench_generation.py                       # embedded default, 32 prompts
    python benchmarks/bench_generation.py --model /path/to/model --prompts 64 --batch-size 32

The last lines are ``engine <N> tokens/s``, ``naive <N> tokens/s`` and ``ratio <R>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

from safetune.components.engine import TransformersEngine  # noqa: E402
from safetune.components.generation import GenerationRequest, render_chat  # noqa: E402
from safetune.config import DecodingConfig  # noqa: E402
from safetune.datasets import load_prompt_sets, sample, split  # noqa: E402
from safetune.models import resolve_model  # noqa: E402


def naive_loop(engine: TransformersEngine, prompts: list[str], config: DecodingConfig, seed: int) -> int:
    """What a first script does: one chat-templated prompt at a time, no batching, no cache."""
    module, tok = engine.module, engine.tokenizer
    gc = module.generation_config(config)
    total = 0
    torch.manual_seed(seed)
    for prompt in prompts:
        text = render_chat(tok, prompt, config.system_prompt_text, module.template_kwargs)
        enc = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = module.model.generate(**enc, generation_config=gc)
        ids = out[0, enc["input_ids"].shape[1]:].tolist()
        total += next((i for i, t in enumerate(ids) if t in module.stop_ids), len(ids))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dataset", default="harmbench-standard")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--naive-prompts", type=int, default=8, help="the naive loop is slow: time it on a subset")
    args = ap.parse_args()

    ref = resolve_model(args.model)
    items = sample(split(load_prompt_sets((args.dataset,)), "search"), args.prompts, seed=0).items
    prompts = [it.prompt for it in items]
    config = DecodingConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    engine = TransformersEngine(ref, cache=None, batch_size=args.batch_size)

    # Warm-up (first-call allocations), not timed.
    engine.generate([GenerationRequest(0, prompts[0], config, 0, 0)])

    start = time.perf_counter()
    out = engine.generate([GenerationRequest(i, p, config, 0, 0) for i, p in enumerate(prompts)])
    engine_s = time.perf_counter() - start
    engine_tokens = sum(g.new_tokens for g in out)

    subset = prompts[: args.naive_prompts]
    start = time.perf_counter()
    naive_tokens = naive_loop(engine, subset, config, seed=0)
    naive_s = time.perf_counter() - start

    engine_tps = engine_tokens / engine_s
    naive_tps = naive_tokens / naive_s
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"model: {ref.model_id} ({ref.revision}); {len(prompts)} prompts engine, {len(subset)} naive; "
          f"batch {args.batch_size}; max_new_tokens {args.max_new_tokens}; temperature {args.temperature}")
    print(f"engine {engine_tps:.1f} tokens/s ({engine_tokens} tokens in {engine_s:.1f} s)")
    print(f"naive {naive_tps:.1f} tokens/s ({naive_tokens} tokens in {naive_s:.1f} s)")
    print(f"ratio {engine_tps / naive_tps:.2f}")


if __name__ == "__main__":
    main()
