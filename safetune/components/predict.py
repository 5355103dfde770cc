"""Lightning's predict loop, made to behave inside a search: quiet, and interruptible."""

import logging


def quiet_lightning() -> None:
    """Lightning sets its loggers to INFO on import; keep its banners out of a WARNING-level console."""
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)


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
