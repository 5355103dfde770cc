"""safetune: search an LLM's inference configuration for safer answers, tracked in MLflow."""

__version__ = "0.1.0"
