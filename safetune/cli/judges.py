"""`safetune judge`, `safetune judges`, `safetune judge-train` and `safetune judge-eval`.

They print numbers only: prompts and responses never reach the console or MLflow params/tags.
"""

from __future__ import annotations

import json
import shlex

import click

from safetune.cli.common import friendly, tracking_uri_option
from safetune.components.judges.training.features import JUDGE_LM


@click.command()
@click.argument("input_path", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False), required=True)
@click.option("--judge", "judge_name", default="safetune", show_default=True)
@friendly
def judge(input_path, output_path, judge_name):
    """Judge JSONL rows with `prompt` and `response` (optional `id`); writes JSONL verdicts."""
    from safetune.jobs.judge_file import judge_jsonl

    n, counts = judge_jsonl(input_path, output_path, judge_name)
    click.echo(f"judged {n} rows with {judge_name}: harmful={counts[True]} not={counts[False]} unknown={counts[None]}")


@click.command("judges")
def judges():
    """List judge names."""
    from safetune.components.judges import judge_names

    click.echo("\n".join(judge_names()))


@click.command("judge-train")
@click.option("--output-dir", default=None, type=click.Path(file_okay=False),
              help="Where to write the weights and MANIFEST.json (default: the packaged artifacts folder).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the train/dev split and templates.")
@click.option("--write-devset/--no-write-devset", default=True, show_default=True,
              help="Also (re)write data/devset.jsonl for this seed.")
@click.option("--dev-eval/--no-dev-eval", default=True, show_default=True, help="Measure the new judge on the dev set.")
@click.option("--lm", default=JUDGE_LM["model"], show_default=True,
              help="Causal LM (alias, hub id or folder) whose hidden states stack with MiniLM's vectors; 'none' for MiniLM alone.")
@click.option("--lm-layer", type=click.IntRange(min=1), default=JUDGE_LM["layer"], show_default=True,
              help="With --lm: pool the states after this many layers (the later ones never run).")
@click.option("--model-answers/--no-model-answers", default=False, show_default=True,
              help="Also train on the offline models' hand-labelled answers to training requests (measured, not shipped).")
@click.option("--label-audit/--no-label-audit", default=False, show_default=True,
              help="Train and measure on our audited PyRIT labels (data/label_audit.jsonl; measured, not shipped).")
@friendly
def judge_train(output_dir, seed, write_devset, dev_eval, lm, lm_layer, model_answers, label_audit):
    """Train the offline `safetune` judge from the vendored human-labelled data (grouped CV)."""
    from safetune.components.judges.trained import ARTIFACT_DIR
    from safetune.jobs.judges import run_judge_train

    command = f"safetune judge-train --seed {seed}" + (f" --output-dir {shlex.quote(output_dir)}" if output_dir else "")
    if lm.lower() != JUDGE_LM["model"] or lm_layer != JUDGE_LM["layer"]:
        command += f" --lm {shlex.quote(lm)}" + ("" if lm.lower() == "none" else f" --lm-layer {lm_layer}")
    if model_answers:
        command += " --model-answers"
    if label_audit:
        command += " --label-audit"
    spec = None if lm.lower() == "none" else {**JUDGE_LM, "model": lm, "layer": lm_layer}
    devset, manifest = run_judge_train(output_dir, seed, write_devset, dev_eval, command, spec, model_answers,
                                       label_audit)
    if devset:
        click.echo(f"devset: {devset['rows']} rows -> {devset['path']}")
    cv = manifest["cv"]
    click.echo(f"grouped {cv['folds']}-fold CV: ROC AUC {cv['roc_auc']:.3f}  balanced acc {cv['balanced_accuracy']:.3f}  "
               f"TPR {cv['tpr']:.3f}  unsafe threshold {manifest['params']['unsafe_threshold']}  "
               f"relevance threshold {manifest['params']['relevance_threshold']}")
    if "dev" in manifest:
        dev = manifest["dev"]
        click.echo(f"dev set: ROC AUC {dev['roc_auc']:.3f}  balanced acc {dev['balanced_accuracy']:.3f}  "
                   f"worst kind FPR {max(v for v in dev['fpr_by_kind'].values() if v is not None):.3f}")
    click.echo(f"wrote {output_dir or ARTIFACT_DIR}/MANIFEST.json")


@click.command("judge-eval")
@click.option("--judge", "judge_names", multiple=True, default=("safetune", "heuristic"), show_default=True,
              help="Judge name (repeatable).")
@click.option("--data", default="devset", show_default=True, help="devset | devset-audited (the dev set with our audited PyRIT labels) | xstest | PATH.jsonl (prompt, response, label, kind).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows (quick checks).")
@click.option("--experiment", default="safetune-judges", show_default=True)
@tracking_uri_option
@click.option("--suffixes/--no-suffixes", default=True, show_default=True,
              help="Also measure suffix robustness: how often appending a refusal, disclaimer or fake verdict to a "
                   "caught harmful answer flips the verdict.")
@click.option("--no-mlflow", is_flag=True, help="Print only; do not log an MLflow run.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Also write the metrics here.")
@friendly
def judge_eval(judge_names, data, limit, experiment, tracking_uri, suffixes, no_mlflow, json_path):
    """Measure judges on labelled rows: accuracy, balanced accuracy, per-kind FPR, ROC AUC, kappa."""
    from safetune.components.judges.training.measure import format_table
    from safetune.jobs.judges import log_judge_eval, run_judge_eval

    result = run_judge_eval(list(judge_names), data, limit, suffixes)
    click.echo(format_table(result))
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    if not no_mlflow:
        run_id = log_judge_eval(result, experiment, tracking_uri)
        click.echo(f"mlflow run: {run_id} (experiment {experiment})")
