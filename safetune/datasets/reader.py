"""The one reader of data files: bundled files by name, user CSV and JSONL files by path.

Everything is read with the csv/json modules (not pandas) so a malformed file is reported with its
line number, as one line, and reading stays fast and dependency-free.
"""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from typing import Iterator

from safetune.errors import SafetuneError


def bundled_path(filename: str) -> Path:
    """A file shipped in ``safetune/datasets/data/`` (licences and citations in its README)."""
    return Path(str(resources.files("safetune.datasets").joinpath("data", filename)))


def bundled_csv_rows(filename: str) -> list[dict[str, str]]:
    try:
        with bundled_path(filename).open("r", encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        # Happens when the wheel was built without package data.
        raise SafetuneError(f"bundled data file {filename!r} is missing; reinstall safetune with its package data") from None


def csv_records(path: Path) -> Iterator[tuple[int, dict]]:
    # utf-8-sig: spreadsheet exports often start with a BOM, which would hide the 'prompt' header.
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        # strict=True makes bad quoting an error instead of silently merging fields.
        reader = csv.reader(f, strict=True)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        if "prompt" not in header:
            raise SafetuneError(f"{path}: no 'prompt' column (columns: {', '.join(header)})")
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise SafetuneError(f"{path}:{reader.line_num}: expected {len(header)} fields, got {len(row)}")
            yield reader.line_num, dict(zip(header, row))


def jsonl_objects(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) of each non-blank line of a UTF-8 JSONL file; a line that is not
    JSON, or a file that is not UTF-8, is a one-line error naming the place."""
    with path.open("r", encoding="utf-8-sig") as f:
        try:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    raise SafetuneError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        except UnicodeDecodeError as e:
            raise SafetuneError(f"{path} is not UTF-8 text (byte {e.start}): convert it to UTF-8") from None
