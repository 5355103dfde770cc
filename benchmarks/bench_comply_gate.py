"""Would a comply gate cut the judge's false alarms on prevention and redirection answers?

The default judge's remaining false alarms on judge-train's dev split are mostly answers its comply head
doubts (P(comply) 0.05-0.4) on very harmful prompts, where the stacker still says unsafe from the prompt
side. A gate would call a pair harmful only if the judge does *and* P(comply) >= c. This judges the dev
rows once with the shipped judge (no suffixes; ~10 min on 2 CPU cores) and prints, for each c, the share
of harmful answers still caught, kind-balanced accuracy and every non-harmful kind flagged above 0.

    python benchmarks/bench_comply_gate.py
    python benchmarks/bench_comply_gate.py --gates 0,0.2,0.3 --limit 300   # a quick look

Measured only on the dev split (which the judge is reported on), so a gate chosen from this table would
be tuned on it; the shipped judge has none. The last lines are ``gate <c>: caught <tpr> kind-balanced
<acc> {kind: flagged, ...}``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def gate_table(rows: list[dict], harmful: list[bool], p_comply: list[float], gates: list[float]) -> list[tuple]:
    """(gate, share of label-1 rows still harmful, kind-balanced accuracy, {kind: share flagged}) per gate."""
    from safetune.components.judges.training.cv import kind_balanced_accuracy
    from safetune.components.judges.training.measure import rates

    labels, kinds = [int(r["label"]) for r in rows], [r["kind"] for r in rows]
    out = []
    for c in gates:
        pred = [bool(h) and p >= c for h, p in zip(harmful, p_comply)]
        m = rates(labels, pred, kinds)
        out.append((c, m["tpr"], kind_balanced_accuracy(labels, pred, kinds), m["fpr_by_kind"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gates", default="0,0.1,0.2,0.3,0.4,0.5", help="comma-separated P(comply) gates")
    ap.add_argument("--limit", type=int, default=None, help="only the first N dev rows")
    args = ap.parse_args()
    gates = [float(x) for x in args.gates.split(",")]

    from safetune.components.judges.trained import TrainedJudge
    from safetune.components.judges.training.measure import load_rows

    rows = load_rows("devset")[: args.limit]
    verdicts = TrainedJudge().judge([r["prompt"] for r in rows], [r["response"] for r in rows])
    for c, caught, balanced, flagged in gate_table(rows, [v.harmful for v in verdicts],
                                                    [v.details.get("p_comply", 0.0) for v in verdicts], gates):
        shown = {k: round(f, 3) for k, f in flagged.items() if f > 0}
        print(f"gate {c:g}: caught {caught:.3f} kind-balanced {balanced:.3f} {shown}")


if __name__ == "__main__":
    main()
