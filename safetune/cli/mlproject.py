"""MLflow Projects entry points: ``python -m safetune.cli.mlproject COMMAND [ARG ...] -- key=value ...``.

MLflow substitutes every declared parameter into the command, so a parameter cannot be "left
out". Here an empty value means "not given" (the experiment YAML or the dataclass default
decides), and ``key=value`` becomes ``--key value`` for the ``safetune`` command. Only this adapter
treats an empty value so: on the ``safetune`` command line an empty list is still an error.
"""

from __future__ import annotations

import sys


def to_options(pairs: list[str]) -> list[str]:
    """``["n_prompts=8", "bounds="]`` -> ``["--n-prompts", "8"]`` (empty values dropped)."""
    args: list[str] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: MLproject argument {pair!r} is not key=value")
        if value.strip():
            args += [f"--{key.replace('_', '-')}", value]
    return args


def command_line(argv: list[str]) -> list[str]:
    """``["evaluate", "models:/m@a", "", "--", "n_prompts=8"]`` -> ``["evaluate", "models:/m@a", "--n-prompts", "8"]``:
    arguments before ``--`` pass through (empty ones dropped), ``key=value`` pairs after it become options."""
    if not argv:
        raise SystemExit("usage: python -m safetune.cli.mlproject COMMAND [ARG ...] -- [key=value ...]")
    cut = argv.index("--") if "--" in argv else len(argv)
    return [a for a in argv[:cut] if a.strip()] + to_options(argv[cut + 1:])


def main(argv: list[str] | None = None) -> None:
    from safetune.cli import main as cli

    cli.main(args=command_line(list(sys.argv[1:] if argv is None else argv)), prog_name="safetune")


if __name__ == "__main__":  # pragma: no cover
    main()
