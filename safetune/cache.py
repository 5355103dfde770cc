"""A content-addressed store for generations and candidate results (SQLite, one file).

A key is the SHA-256 of everything that can change the value: for a generation that is the model
id and revision, the chat template, the system prompt, the full generation config, the seed, the
sample index and the prompt (a missing sample index makes repeated samples identical, promptfoo
#360). Writes are committed per batch, so an interrupted search keeps everything it finished.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from safetune.errors import SafetuneError


def make_key(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


class Cache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60)
            self._init_schema()
        except (OSError, sqlite3.Error) as exc:
            raise SafetuneError(f"cache {str(self.path)!r} cannot be used: {exc}") from None

    def _init_schema(self) -> None:
        # Switching to WAL needs a moment of exclusive access, and SQLite may refuse it at once
        # ("database is locked") instead of waiting when another process (a second search) is
        # opening the same file: retry briefly. Once the file is in WAL mode it stays so.
        for attempt in range(50):
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS entries (kind TEXT, key TEXT, value TEXT, PRIMARY KEY (kind, key))"
                )
                self._db.commit()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1 + 0.05 * attempt)

    def get_many(self, kind: str, keys: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM entries WHERE kind = ? AND key IN ({marks})", [kind, *chunk]
                ).fetchall()
                found.update({k: json.loads(v) for k, v in rows})
        return found

    def get(self, kind: str, key: str) -> dict | None:
        return self.get_many(kind, [key]).get(key)

    def put_many(self, kind: str, items: dict[str, dict]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO entries (kind, key, value) VALUES (?, ?, ?)",
                [(kind, k, json.dumps(v)) for k, v in items.items()],
            )
            self._db.commit()

    def count(self, kind: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM entries WHERE kind = ?", [kind]).fetchone()[0]

    def close(self) -> None:
        self._db.close()


def count_entries(path: str | Path, kind: str) -> int:
    """Entries of ``kind`` in a cache file another process may be writing: 0 while the file does not
    exist yet or is locked (for progress checks from outside the search, e.g. benchmarks and tests)."""
    path = Path(path)
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM entries WHERE kind = ?", [kind]).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
