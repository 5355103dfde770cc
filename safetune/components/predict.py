"""Lightning's predict loop, made to behave inside a search: quiet, and interruptible."""

import logging


# Lightning warns on every predict call about two things done on purpose: the prompt DataModule's
# length-bucketing batch sampler (it yields every index once; tests/components/engines check that no
# request is lost) and the generation module's ``transfer_batch_to_device`` (batches are request
# objects; tensors are made on the model's device in ``predict_step``). Anything else still shows.
INTENDED = (r"You are using a custom batch sampler `BucketBatchSampler`",
            r"You have overridden `transfer_batch_to_device` in `LightningModule`")


def quiet_lightning() -> None:
    """Lightning sets its loggers to INFO on import; keep its banners out of a WARNING-level console,
    and its warnings about what we do on purpose (``INTENDED``) out of every console."""
    import warnings

    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    for message in INTENDED:
        warnings.filterwarnings("ignore", message=message)


def predict(trainer, *args, **kwargs):
    """``trainer.predict`` that lets Ctrl-C and SIGTERM through as the exceptions they are.

    Lightning catches a KeyboardInterrupt in its loop, ignores further SIGINTs and calls
    ``sys.exit(1)``, so the caller's cleanup (marking the MLflow run KILLED, exit 130) never ran.
    A callback remembers the interrupt and it is re-raised in place of that exit.
    """
    import signal

    from lightning.pytorch.callbacks import Callback

    class _Remember(Callback):
        exception: BaseException | None = None

        def on_exception(self, trainer, pl_module, exception):
            self.exception = exception

    remember = _Remember()
    trainer.callbacks.append(remember)
    try:
        return trainer.predict(*args, **kwargs)
    except SystemExit:
        if isinstance(remember.exception, KeyboardInterrupt):
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise remember.exception from None
        raise
    finally:
        trainer.callbacks.remove(remember)
