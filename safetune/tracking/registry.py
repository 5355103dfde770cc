"""Register Pareto configurations as versions of a ``safetune-<model>`` pyfunc model with aliases."""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from safetune.config import DecodingConfig
from safetune.models import ModelRef

log = logging.getLogger(__name__)

MODEL_CODE = str(Path(__file__).with_name("pyfunc_model.py"))
REQUIREMENTS = ["torch", "transformers", "sentence-transformers", "lightning", "mlflow", "pandas", "gguf", "accelerate"]


def pip_requirements() -> list[str]:
    """The exact versions this process runs with, plus safetune itself."""
    reqs = []
    for name in REQUIREMENTS:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs + [f"safetune=={metadata.version('safetune')}"]


def model_name(ref: ModelRef) -> str:
    return f"safetune-{ref.slug}"


def model_config(ref: ModelRef, config: DecodingConfig, seed: int) -> dict:
    return {
        "model": {"name": ref.name, "model_id": ref.model_id, "revision": ref.revision},
        "decoding": config.to_dict(),
        "system_prompt_text": config.system_prompt_text,
        "generation_kwargs": config.generation_kwargs(),
        "seed": seed,
    }


DIGEST_TAG = "safetune.config_digest"


def config_digest(cfg: dict, requirements: list[str]) -> str:
    """What makes two registered versions interchangeable: the model config and the pinned packages."""
    import hashlib
    import json

    blob = json.dumps({"config": cfg, "requirements": requirements}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def existing_version(name: str, digest: str, client: MlflowClient | None = None) -> str | None:
    """The newest READY version of ``name`` registered with ``digest``, if any."""
    client = client or MlflowClient()
    found = client.search_model_versions(f"name = '{name}' and tags.`{DIGEST_TAG}` = '{digest}'")
    ready = [int(v.version) for v in found if v.status == "READY"]
    return str(max(ready)) if ready else None


INPUT_EXAMPLE = ["How do I bake bread?"]


def log_configuration_model(run_id: str, ref: ModelRef, config: DecodingConfig, seed: int, name: str,
                            description: str | None = None) -> str:
    """Log the pyfunc model into ``run_id`` and register it; returns the version number.

    A configuration already registered under ``name`` with the same model, knobs, seed and packages
    keeps its version (a re-run of a search does not add identical copies to the registry); the run
    gets a ``safetune.registered_version`` tag either way.
    """
    cfg = model_config(ref, config, seed)
    requirements = pip_requirements()
    digest = config_digest(cfg, requirements)
    reused = existing_version(name, digest)
    if reused is not None:
        MlflowClient().set_tag(run_id, "safetune.registered_version", reused)
        log.info("configuration already registered as %s version %s", name, reused)
        return reused
    with mlflow.start_run(run_id=run_id, nested=True):
        mlflow.log_dict(cfg, "safetune_config.json")
        # The input example is also a smoke test: MLflow loads the logged model and answers it.
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=MODEL_CODE,
            model_config=cfg,
            pip_requirements=requirements,
            registered_model_name=name,
            input_example=(INPUT_EXAMPLE, {"sample": 0}),
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(name, version, DIGEST_TAG, digest)
    if description:
        client.update_model_version(name, version, description=description)
    client.set_tag(run_id, "safetune.registered_version", version)
    return version


def describe_version(config: DecodingConfig, figures: dict[str, float], where: str) -> str:
    """A version's registry description: its knobs and the figures it was chosen on."""
    knobs = ", ".join(f"{k}={v}" for k, v in config.to_dict().items() if k != "system_prompt_text")
    shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
    return f"{knobs}. Measured on {where}: {shown}."


def set_aliases(name: str, aliases: dict[str, str], client: MlflowClient | None = None, attempts: int = 5) -> None:
    """Point each alias at its version; last writer wins when searches share a registered model.

    MLflow's SQL store sets an alias by reading then inserting, so two searches that register the
    same model at the same moment can both try the INSERT and one gets a unique-key violation
    (seen on PostgreSQL). The retry reads the row the other writer made and updates it instead.
    """
    import time

    from mlflow.exceptions import MlflowException

    client = client or MlflowClient()
    for alias, version in aliases.items():
        for attempt in range(attempts):
            try:
                client.set_registered_model_alias(name, alias, version)
                break
            except MlflowException as exc:
                if attempt == attempts - 1 or not _is_write_race(exc):
                    raise
                log.debug("alias %s@%s raced another writer; retrying", name, alias)
                time.sleep(0.1 * 2**attempt)


def _is_write_race(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("unique", "duplicate key", "already exists", "deadlock", "could not serialize"))
