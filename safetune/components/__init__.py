"""Reusable Lightning components: generation, relevance, judges and the prompt DataModule."""

import logging


def quiet_lightning() -> None:
    """Lightning sets its loggers to INFO on import; keep its banners out of a WARNING-level console."""
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
