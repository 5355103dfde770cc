"""Matrix-multiply throughput of each linear-layer shape of a model, at several decode batch sizes.

The generation benchmark's ``roofline`` divides by one matmul rate (batch x hidden x intermediate);
this shows why a decode step falls short of it: the LM head (hidden x vocabulary) and the smaller
batches left after rows finish run slower. Shapes default to SmolLM2-135M's; rates are the best of
short timed bursts of (rows x in) @ (in x out), in GFLOP/s (the same measurement as the roofline's limit).

    python benchmarks/bench_matmul.py
    python benchmarks/bench_matmul.py --hidden 896 --intermediate 4864 --kv 128 --vocab 151936 --rows 8,32
"""

from __future__ import annotations

import argparse
import time

import torch


def matmul_flops(batch: int, hidden: int, inner: int, dtype: torch.dtype, seconds: float = 2.0,
                 packed: bool = False) -> float:
    """FLOP/s of a (batch x hidden) @ (hidden x inner) matmul, best of several timed bursts
    (also the limit of ``bench_generation.py``'s roofline). ``packed``: the same product through a
    weight pre-packed for oneDNN (safetune.components.packed_linear), where the dtype allows it."""
    a, b = torch.randn(batch, hidden, dtype=dtype), torch.randn(hidden, inner, dtype=dtype)
    run = lambda: a @ b  # noqa: E731
    if packed:
        from safetune.components.packed_linear import pack_weight, packed_linear, packing_supported

        weight = b.t().contiguous()
        if not packing_supported(weight):
            return 0.0
        w = pack_weight(weight, batch)
        run = lambda: packed_linear(a, w)  # noqa: E731
    for _ in range(3):
        run()  # warm-up: kernel selection
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(10):
            run()
        best = max(best, 10 * 2 * batch * hidden * inner / (time.perf_counter() - start))
    return best


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers ("8,16,32")."""
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers (got {text!r})") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=576)
    ap.add_argument("--intermediate", type=int, default=1536)
    ap.add_argument("--kv", type=int, default=192, help="key/value projection width (kv heads x head dim)")
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--rows", type=int_list, default="8,16,32,64,128,256", help="comma-separated batch sizes")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--seconds", type=float, default=0.7, help="timing per shape")
    ap.add_argument("--packed", action="store_true", help="weights pre-packed for oneDNN (bfloat16 on CPU only)")
    args = ap.parse_args()
    h, i = args.hidden, args.intermediate
    shapes = {"q/o": (h, h), "k/v": (h, args.kv), "gate/up": (h, i), "down": (i, h), "lm head": (h, args.vocab)}
    dtype = getattr(torch, args.dtype)
    print(f"{torch.get_num_threads()} threads, {args.dtype}{', packed' if args.packed else ''}; GFLOP/s of (rows x in) @ (in x out)")
    print("rows " + " ".join(f"{name}({k}x{n})" for name, (k, n) in shapes.items()))
    for r in args.rows:
        print(f"{r:4d} " + " ".join(f"{matmul_flops(r, k, n, dtype, args.seconds, args.packed) / 1e9:.0f}" for k, n in shapes.values()))


if __name__ == "__main__":
    main()
