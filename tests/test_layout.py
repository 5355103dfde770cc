"""The package's layout: folders are the pipeline's stages, imports flow one way, no import circles.

data -> generation and scoring -> objectives -> search -> tracking -> analysis -> jobs -> CLI: a
module imports safetune modules of its own stage or earlier ones (and the shared top-level
modules), never a later stage. Every import counts, also those inside functions (an import that
runs later is still a dependency). Read with ``ast``: nothing is imported to check.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "safetune"
# Shared by every stage; they import only each other.
SHARED = {"__init__", "cache", "config", "errors", "models", "prompts", "registries", "stats"}
STAGES = ["datasets", "components", "objectives", "search", "tracking", "analysis", "jobs", "cli", "testing"]
HEAVY = ("torch", "transformers", "lightning", "sentence_transformers")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def stage(module: str) -> str:
    """The stage a module belongs to: its folder under safetune/, "shared", or "cli" for __main__."""
    parts = module.split(".")
    if len(parts) == 1:
        return "shared"
    if len(parts) == 2 and parts[1] == "__main__":
        return "cli"  # `python -m safetune` is the command line
    return "shared" if len(parts) == 2 and parts[1] in SHARED else parts[1]


def imports(module: str) -> set[str]:
    """Every safetune module ``module`` imports (``from a import b`` counts a.b when b is a module)."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "safetune"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "safetune":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in MODULES else node.module)
    return out - {module}


def third_party(module: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots - {"safetune", "__future__"} - set(sys.stdlib_module_names)


def test_only_the_shared_modules_sit_at_the_top():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == SHARED | {"__main__"}
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(STAGES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_to_the_same_or_an_earlier_stage(module):
    mine = stage(module)
    for other in imports(module):
        theirs = stage(other)
        if mine == "shared":
            assert theirs == "shared", f"{module} (shared) imports {other} ({theirs})"
        elif theirs != "shared":
            assert STAGES.index(theirs) <= STAGES.index(mine), f"{module} ({mine}) imports {other} ({theirs})"


def test_no_import_circles():
    graph = {m: imports(m) & set(MODULES) for m in MODULES}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                circle = path[path.index(n):] + [n]
                pytest.fail("import circle: " + " -> ".join(circle))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_circle_check_finds_a_circle(monkeypatch):
    """The check above can fail: a made-up a -> b -> a is reported."""
    fake = {"safetune.a": {"safetune.b"}, "safetune.b": {"safetune.a"}}
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {**MODULES, **dict.fromkeys(fake, None)})
    monkeypatch.setattr(sys.modules[__name__], "imports", lambda m: fake.get(m, set()))
    with pytest.raises(pytest.fail.Exception, match="import circle"):
        test_no_import_circles()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if stage(m) != "components"))
def test_only_components_import_torch_transformers_or_lightning(module):
    heavy = third_party(module) & set(HEAVY)
    if module == "safetune.models":
        # Resolving a model is shared by every stage; converting the embedded GGUF once needs transformers.
        heavy -= {"transformers"}
    assert not heavy, f"{module} imports {', '.join(sorted(heavy))}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if stage(m) == "search"))
def test_search_uses_numpy_and_pymoo_only(module):
    assert third_party(module) <= {"numpy", "pymoo"}, f"{module}: {third_party(module)}"


def test_search_imports_nothing_heavy_at_run_time():
    """Statically clean is not enough: whatever the search imports (objectives, components' light
    halves) must not pull torch, transformers, Lightning or MLflow in either."""
    names = [m for m in MODULES if stage(m) == "search"]
    code = (f"import sys; import {', '.join(names)}; "
            f"print(','.join(m for m in {HEAVY + ('mlflow',)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
