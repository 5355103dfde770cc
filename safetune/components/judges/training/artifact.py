"""``train()``: cross-validate, fit on the train split, write the artifact and its MANIFEST.json."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from safetune.components.embeddings import DEFAULT_EMBEDDER, EmbeddingCache, StackedEmbedder, text_embedder
from safetune.components.judges.trained import (
    ARTIFACT_DIR, ARTIFACT_FORMAT, PARAMS, STACK_FEATURES, WEIGHTS, TrainedJudge, save_artifact,
)
from safetune.components.judges.training.cv import (
    STACK_DEPTH, STACK_MIN_LEAF, STACK_MONOTONIC, STACK_RATE, STACK_TREES, _fit_judge, cross_validate,
)
from safetune.components.judges.training.data import DATA_DIR, DEVSET, LABEL_AUDIT, MODEL_ANSWERS, XSTEST, read_csv, sha256
from safetune.components.judges.training.features import (
    COMPLY_ALPHA, COMPLY_HIDDEN, COMPLY_NETS, COMPLY_RESIDUAL, JUDGE_LM, PROMPT_C, embed_training_texts,
)
from safetune.components.judges.training.measure import evaluate_judges
from safetune.components.judges.training.synthesis import build_devset, some_groups


def train(output_dir: str | Path = ARTIFACT_DIR, seed: int = 0, max_groups: int | None = None,
          evaluate_dev: bool = True, command: str | None = None, embeddings: EmbeddingCache | None = None,
          lm: dict | None = JUDGE_LM, model_answers: bool = False, label_audit: bool = False) -> dict:
    """Train both heads on the train split, write the artifact + MANIFEST.json, return the manifest.

    ``max_groups`` keeps a seeded subset of training prompt groups (fast tests); the dev split is
    never trained on. ``model_answers``: also train on the offline models' hand-labelled answers
    (``data.MODEL_ANSWERS``). ``label_audit``: train (and measure dev) on our audited PyRIT labels
    (``data.LABEL_AUDIT``). ``embeddings``: the texts' vectors, kept across the cross-validation's many
    fits (a fresh cache of the default embedder, stacked with ``lm``'s hidden states unless ``lm`` is None,
    if not given; pass one to reuse it across trainings; its embedder decides, ``lm`` is then ignored).
    """
    import sklearn

    embed = embeddings or EmbeddingCache(text_embedder(DEFAULT_EMBEDDER, lm))
    stacked = embed.embedder if isinstance(embed.embedder, StackedEmbedder) else None
    embedder = stacked.base.name if stacked else embed.embedder.name
    lm_params = {"model": stacked.lm, "layer": stacked.layer, "max_length": stacked.max_length,
                 "pooling": "final norm, mean over tokens after the first, L2"} if stacked else None
    out = Path(output_dir)
    rows, dev = build_devset(seed, model_answers, label_audit)
    rows = some_groups(rows, seed, max_groups)
    embed_training_texts(rows, embed)  # the comply head also trains on trailing views: one embedding call
    cv, params = cross_validate(rows, embed, seed)
    heads, stacker = _fit_judge(rows, embed, seed)
    params.update({"embedder": embedder, "prompt_C": PROMPT_C, "seed": seed,
                   "comply_head": {"hidden": COMPLY_HIDDEN, "alpha": COMPLY_ALPHA, "nets": COMPLY_NETS,
                                   "views": True}, "comply_residual": COMPLY_RESIDUAL,
                   "stacker": {"depth": STACK_DEPTH, "trees": STACK_TREES, "rate": STACK_RATE, "monotonic": STACK_MONOTONIC,
                               "min_leaf": STACK_MIN_LEAF, "features": list(STACK_FEATURES)},
                   "lm": lm_params, "model_answers": model_answers, "label_audit": label_audit,
                   "format": ARTIFACT_FORMAT})
    save_artifact(out, heads, params, stacker)
    manifest = {
        "command": command or f"safetune judge-train --output-dir {out} --seed {seed}",
        "seed": seed, "python": sys.version.split()[0], "sklearn": sklearn.__version__, "numpy": np.__version__,
        "embedder": embed.embedder.name, "params": params,
        "data": _data_manifest(model_answers, label_audit), "train_rows": _counts(rows), "dev_rows": _counts(dev),
        "cv": cv, "artifact": {n: sha256(out / n) for n in (WEIGHTS, PARAMS)},
        "notes": "CV = grouped 5-fold on the train split (groups = prompts, rho pairs). Dev rows = held-out "
                 "prompt groups + synthetic kinds built with disjoint templates. XSTest is never used here.",
    }
    if evaluate_dev:
        judge = TrainedJudge(artifact_dir=out)
        manifest["dev"] = evaluate_judges(["safetune"], dev, judges={"safetune": judge})["judges"]["safetune"]
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _counts(rows: list[dict]) -> dict:
    
    return {"rows": len(rows), "prompts": len({r["prompt"] for r in rows}),
            "by_kind": dict(sorted(Counter(r["kind"] for r in rows).items()))}


def _data_manifest(model_answers: bool = False, label_audit: bool = False) -> dict:
    """Every vendored data file: sha256, row count (CSV rows / JSON items / JSONL lines) and its use."""
    out = {}
    for path in sorted(DATA_DIR.iterdir()):
        if path.suffix == ".csv":
            rows = int(len(read_csv(path.name)))
        elif path.suffix == ".json":
            rows = len(json.loads(path.read_text("utf-8")))
        elif path.suffix == ".jsonl":
            rows = sum(1 for line in path.read_text("utf-8").splitlines() if line.strip())
        else:
            continue
        use = {XSTEST: "reporting only (judge-eval)", DEVSET.name: "dev set (held-out groups)",
               MODEL_ANSWERS: "training" if model_answers else "not used (judge-train --model-answers)",
               LABEL_AUDIT: "training and dev labels" if label_audit else "not used (judge-train --label-audit)",
               }.get(path.name, "training")
        out[path.name] = {"sha256": sha256(path), "rows": rows, "use": use}
    return out
