"""One exception type for every user-facing mistake.

The CLI turns a ``SafetuneError`` into a single line on stderr and exit code 2, so bad input never
becomes a traceback or a silent default.
"""


class SafetuneError(Exception):
    """A problem the user can fix (bad argument, missing file, unavailable model)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every cleanup written for KeyboardInterrupt runs; exits 143."""


def interrupt_note(exc: KeyboardInterrupt) -> str:
    """What a run's cleanup attached to an interrupt: how to resume it (or a generic hint)."""
    return getattr(exc, "safetune_resume", "finished work is cached; re-run the same command to reuse it")
