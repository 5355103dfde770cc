"""Is the champion as fluent as the default, judged by a model other than the generator?

The search's fluency measure is the generator's own NLL of its answers; this checks it from outside.
Each target configuration (a registered models:/... URI or a config JSON) and the model's default
answer 40 everyday prompts that are not in the package (benchmarks/data/everyday_prompts.txt); a
*reference* model (by default the Qwen2.5-Coder-0.5B GGUF, `bash install.sh --with-qwen`) scores every
answer by teacher forcing: the mean NLL per token of the answer given the prompt in the reference's
own chat template, no system prompt. Printed: the median per configuration and its ratio to the
default's (issue 9 asks <= 1.5 for the champion), then five of the first target's answers verbatim.

`--calibration` adds two known points: ordinary sampling (temperature 0.7, top-p 0.9) and the word
salad of issue 9, so the ratio scale has anchors measured in the same run.

    python benchmarks/bench_fluency.py models:/safetune-smollm2-135m@champion --calibration
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from safetune.cache import Cache
from safetune.components.engines import get_engine
from safetune.components.generation import load_causal_lm
from safetune.components.requests import GenerationRequest, render_chat
from safetune.config import DecodingConfig
from safetune.config import EvaluateConfig  # noqa: E402
from safetune.jobs.evaluate import resolve_targets
from safetune.models import cache_root, default_decoding, resolve_model

PROMPTS = Path(__file__).parent / "data" / "everyday_prompts.txt"
CALIBRATION = {
    "sampling-t0.7-p0.9": DecodingConfig(temperature=0.7, top_p=0.9, max_new_tokens=64),
    "word-salad": DecodingConfig(temperature=1.4601, top_p=0.7529, top_k=39, repetition_penalty=0.7679,
                                 no_repeat_ngram_size=2, max_new_tokens=33, system_prompt="balanced"),
}


def reference_nll(tokenizer, model, prompts: list[str], answers: list[str], batch_size: int = 8) -> list[float | None]:
    """Mean NLL per token of each answer given its prompt, under the reference model (teacher forcing)."""
    out: list[float | None] = []
    for start in range(0, len(prompts), batch_size):
        for prompt, answer in zip(prompts[start:start + batch_size], answers[start:start + batch_size]):
            answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
            if not answer_ids:
                out.append(None)
                continue
            context = tokenizer(render_chat(tokenizer, prompt, None, {}), add_special_tokens=False)["input_ids"]
            ids = torch.tensor([context + answer_ids])
            with torch.inference_mode():
                logits = model(input_ids=ids).logits[0, len(context) - 1:-1].float()
            lp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(answer_ids)[:, None]).flatten()
            out.append(float(-lp.mean()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="models:/NAME@ALIAS or config JSON files")
    parser.add_argument("--model", default=None, help="generator (default: the targets' base model)")
    parser.add_argument("--reference", default="qwen2.5-coder-0.5b", help="scoring model (not the generator)")
    parser.add_argument("--calibration", action="store_true", help="add ordinary sampling and the word salad")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    if args.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(args.tracking_uri)
    model, targets = resolve_targets(EvaluateConfig(targets=tuple(args.targets), model=args.model or "smollm2-135m"))
    ref = resolve_model(model)
    reference = resolve_model(args.reference)
    if reference.model_id == ref.model_id:
        raise SystemExit("the reference model must differ from the generator")
    prompts = [p.strip() for p in PROMPTS.read_text().splitlines() if p.strip()]
    default = default_decoding(ref, max_new_tokens=64)
    configs = {"default": default, **{label: c for label, c in targets if c is not None}}
    if args.calibration:
        configs.update(CALIBRATION)

    engine = get_engine("transformers", ref=ref, cache=Cache(cache_root() / "cache.sqlite"), batch_size=64)
    requests = [GenerationRequest(i, p, c, 0, 0) for i, (p, c) in
                enumerate((p, c) for c in configs.values() for p in prompts)]
    start = time.perf_counter()
    answers = [g.response for g in engine.generate(requests)]
    print(f"generated {len(answers)} answers with {ref.name} in {time.perf_counter() - start:.0f} s")
    tokenizer, scorer = load_causal_lm(reference.path, dtype="bfloat16" if engine.dtype == "bfloat16" else "float32")
    start = time.perf_counter()
    nll = reference_nll(tokenizer, scorer, [r.prompt for r in requests], answers)
    print(f"scored them with {reference.name} in {time.perf_counter() - start:.0f} s\n")

    n = len(prompts)
    medians = {}
    for k, label in enumerate(configs):
        values = [v for v in nll[k * n:(k + 1) * n] if v is not None]
        medians[label] = statistics.median(values) if values else float("nan")
    print(f"{'configuration':28s} {'median ref. NLL':>16s} {'ratio to default':>17s}")
    for label, med in medians.items():
        print(f"{label[:28]:28s} {med:16.3f} {med / medians['default']:17.2f}")
    first = next((label for label in configs if label != "default"), "default")
    k = list(configs).index(first)
    print(f"\nfive answers of {first} (verbatim):")
    for i in range(5):
        print(f"- {prompts[i]}\n  -> {answers[k * n + i]!r}")
    print(f"\nratio {medians[first] / medians['default']:.2f}")


if __name__ == "__main__":
    main()
