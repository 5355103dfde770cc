"""One exception type for every user-facing mistake.

The CLI turns a ``SafetuneError`` into a single line on stderr and exit code 2, so bad input never
becomes a traceback or a silent default.
"""


class SafetuneError(Exception):
    """A problem the user can fix (bad argument, missing file, unavailable model)."""
