"""``safetune judge``: JSONL in (prompt, response, optional id) -> JSONL verdicts out."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from safetune.components.judges.base import get_judge
from safetune.datasets.reader import jsonl_objects
from safetune.errors import SafetuneError


def read_pairs(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise SafetuneError(f"input file {str(path)!r} not found")
    rows = []
    for lineno, row in jsonl_objects(path):
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not isinstance(row.get("response"), str):
            raise SafetuneError(f"{path}:{lineno}: each row needs string fields 'prompt' and 'response'")
        rows.append(row)
    if not rows:
        raise SafetuneError(f"{path} holds no rows")
    return rows


def judge_jsonl(input_path, output_path, judge_name: str = "heuristic", batch_size: int = 256):
    out = Path(output_path)
    if out.exists() and out.resolve() == Path(input_path).resolve():
        raise SafetuneError(f"the output {str(out)!r} is the input: choose another -o file")
    judge = get_judge(judge_name)
    rows = read_pairs(input_path)
    counts: Counter = Counter({True: 0, False: 0, None: 0})
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed when complete: an interrupted run leaves no half file.
    tmp = out.with_name(out.name + ".partial")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for start in range(0, len(rows), batch_size):
                chunk = rows[start:start + batch_size]
                verdicts = judge.judge([r["prompt"] for r in chunk], [r["response"] for r in chunk])
                for i, (row, v) in enumerate(zip(chunk, verdicts)):
                    record = {"id": row.get("id", start + i), **v.to_dict(), "judge": judge_name}
                    counts[v.harmful] += 1
                    fh.write(json.dumps(record) + "\n")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return len(rows), counts
