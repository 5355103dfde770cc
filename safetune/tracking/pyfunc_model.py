"""The registered model, as MLflow "models from code": this file is logged, not a pickle.

The configuration (decoding parameters, system prompt text and the base-model reference) is plain
JSON in the MLmodel file (``model_config``) and in ``safetune_config.json``. Loading resolves the
base model again (alias, hub id or folder) and generates with exactly that configuration.
"""

from __future__ import annotations

import mlflow
from mlflow.pyfunc import PythonModel


class SafetuneConfiguredModel(PythonModel):
    def load_context(self, context):
        from safetune.components.engines.transformers import TransformersEngine
        from safetune.config import DecodingConfig
        from safetune.models import resolve_model

        cfg = context.model_config
        self.decoding = DecodingConfig.from_dict(cfg["decoding"])
        self.seed = int(cfg.get("seed", 0))
        ref = resolve_model(cfg["model"]["name"])
        if ref.revision != cfg["model"]["revision"]:
            import warnings

            warnings.warn(
                f"base model revision {ref.revision} differs from the searched one {cfg['model']['revision']}"
            )
        self.engine = TransformersEngine(ref, cache=None, batch_size=int(cfg.get("batch_size", 16)))

    # Type hints give the model its signature (list of prompts -> list of responses); MLflow turns a
    # one-column DataFrame or a served {"inputs": [...]} into the list before calling this.
    def predict(self, context, model_input: list[str], params: dict | None = None) -> list[str]:
        from safetune.components.requests import GenerationRequest

        prompts = [str(p) for p in model_input]
        sample = int((params or {}).get("sample", 0))
        requests = [GenerationRequest(i, p, self.decoding, self.seed, sample) for i, p in enumerate(prompts)]
        return [g.response for g in self.engine.generate(requests)]


mlflow.models.set_model(SafetuneConfiguredModel())
