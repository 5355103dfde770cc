"""Before/after equality: the same tiny-model search, same seed, gives the same candidates and metrics.

``golden/search_tiny_llama.json`` was written by the code *before* the package was restructured
(issue 13). This test re-runs the same search with today's code and compares: every candidate's
configuration exactly, in order; every metric, per-response verdict and NLL within a tight
tolerance; the responses themselves by hash; the hypervolume per generation; the validation
figures and the champion summary. A refactor that changes what the search does fails here.

The model is the tiny random Llama of conftest.py (seeded init, float32 weights), so the numbers are
deterministic on one machine but may drift across CPUs or library versions. After a deliberate
behaviour change (or on a new machine), regenerate the file and review the diff:

    PYTHONPATH=. python tests/test_golden_search.py --write
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden" / "search_tiny_llama.json"
# float32 weights on one machine: the values agree to the last bit in practice; the tolerance only
# absorbs summation-order noise (e.g. a BLAS choosing another kernel), never a behaviour change.
REL, ABS = 1e-6, 1e-6
# Per-response fields kept (prompt and response text are not stored: responses by hash only).
ROW_FIELDS = ("suite", "prompt_id", "category", "sample", "new_tokens", "finished", "nll", "incoherent",
              "relevance", "harmful", "score", "unsafe", "relevant", "useful", "harmful.heuristic",
              "complied", "helpful", "correct")


def golden_config(model_path: str):
    """The search: 3 prompts, 3 x 2 candidates, a few tokens, both offline judges, guards and racing
    on, 3 validation prompts; nothing registered (the pyfunc logging is covered elsewhere)."""
    from safetune.config import GuardConfig, SearchConfig, SearchSpace

    return SearchConfig(model=model_path, n_prompts=3, n_validation=3, pop_size=3, n_gen=2, batch_size=8,
                        seed=0, judge="safetune", judges=("heuristic",), experiment="golden", register=False,
                        dtype="float32", space=SearchSpace.from_dict({"max_new_tokens": [4, 8]}),
                        guards=GuardConfig(n_benign=2, n_capability=1))


def _row(row: dict) -> dict:
    out = {k: row[k] for k in ROW_FIELDS if k in row}
    out["response_sha"] = hashlib.sha256(row["response"].encode()).hexdigest()[:16]
    return out


def run_golden_search(model_path: str, workdir: Path) -> dict:
    """Run the search in ``workdir`` (own cache and tracking store) and return what it produced."""
    from mlflow.tracking import MlflowClient

    from safetune.jobs.search import run_search

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    cfg = golden_config(model_path)
    cfg.cache_dir = str(workdir / "cache" / "cache.sqlite")
    outcome = run_search(cfg, tracking_uri=uri, progress=False)
    client = MlflowClient(tracking_uri=uri)
    hv = sorted(client.get_metric_history(outcome.parent_run_id, "hypervolume"), key=lambda m: m.step)
    validation = {}
    for i, run_id in enumerate(outcome.child_run_ids):
        metrics = client.get_run(run_id).data.metrics
        found = {k: v for k, v in sorted(metrics.items()) if k.startswith("validation.")}
        if found:
            validation[str(i)] = found
    summary = dict(outcome.summary or {})
    return {
        "candidates": [{"config": r.config.to_dict(),
                        "metrics": {k: v for k, v in sorted(r.metrics().items()) if k != "wall_time_s"},
                        "rows": [_row(row) for row in r.rows]} for r in outcome.results],
        "pareto": [outcome.child_run_ids.index(run_id) for run_id in outcome.pareto_run_ids],
        "hypervolume": [m.value for m in hv],
        "validation": validation,
        "summary": summary,
    }


def assert_same(expected, actual, where: str = "golden") -> None:
    """Structures equal; floats within tolerance (NaN equals NaN); everything else exactly."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert sorted(expected) == sorted(actual), f"{where}: keys {sorted(expected)} != {sorted(actual)}"
        for key in expected:
            assert_same(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(expected) == len(actual), f"{where}: {expected} != {actual}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(actual, bool) and isinstance(actual, (int, float)):
        if math.isnan(expected):
            assert math.isnan(actual), f"{where}: {actual} != nan"
        else:
            assert math.isclose(expected, actual, rel_tol=REL, abs_tol=ABS), f"{where}: {actual} != {expected}"
    else:
        assert expected == actual, f"{where}: {actual!r} != {expected!r}"


def _jsonable(data: dict) -> dict:
    return json.loads(json.dumps(data, sort_keys=True))  # tuples -> lists, as the file stores them


def test_search_matches_the_pre_refactor_golden(tiny_llama, tmp_path):
    expected = json.loads(GOLDEN.read_text())
    actual = _jsonable(run_golden_search(tiny_llama, tmp_path))
    # Configurations first and exactly: they are the search's trajectory.
    assert [c["config"] for c in actual["candidates"]] == [c["config"] for c in expected["candidates"]]
    assert_same(expected, actual)


def _write() -> None:  # pragma: no cover - run by hand, see the module docstring
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conftest import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "tiny-llama", "llama")
        work = Path(tmp) / "work"
        work.mkdir()
        data = _jsonable(run_golden_search(str(model), work))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}: {len(data['candidates'])} candidates")


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: PYTHONPATH=. python tests/test_golden_search.py --write")
    import os

    for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
                       "TOKENIZERS_PARALLELISM": "false"}.items():
        os.environ.setdefault(key, value)
    _write()
