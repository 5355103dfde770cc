"""A search answered from the cache must not pay for torch, Lightning or transformers (~5 s here)."""

import subprocess
import sys


def test_search_modules_import_without_torch_lightning_or_transformers():
    code = ("import sys, safetune.cli, safetune.jobs.search.prepare, safetune.jobs.search.loop, "
            "safetune.jobs.search.finish, safetune.jobs.evaluate, safetune.jobs.survey, "
            "safetune.components.engines, safetune.components.engines.transformers, safetune.components.relevance, "
            "safetune.components.embeddings, safetune.objectives.evaluator; "
            "heavy = [m for m in ('torch', 'lightning', 'transformers') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_engine_identity_needs_no_model_or_tokenizer(tiny_llama):
    code = ("import sys; from safetune.components.engines.transformers import TransformersEngine; "
            "from safetune.models import resolve_model; "
            f"e = TransformersEngine(resolve_model({tiny_llama!r}), dtype='float32'); e.info(); "
            "print('torch' in sys.modules, e._module is None, e._tokenizer is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_every_benchmark_script_imports_and_shows_its_help():
    """The benchmarks are run by hand, not by the suite: a refactor must not leave one importing a
    name that moved (bench_fluency did once). ``--help`` imports the module and parses no work."""
    from pathlib import Path

    scripts = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))
    assert scripts
    for script in scripts:
        out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{script.name}: {out.stderr.strip().splitlines()[-1:]}"
        assert "usage" in out.stdout.lower()
