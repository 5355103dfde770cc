"""Ctrl-C and SIGTERM inside a Lightning predict loop reach the caller as themselves, not sys.exit(1)."""

import signal

import lightning as L
import pytest
import torch

from safetune.components.predict import predict
from safetune.errors import Terminated


class Interrupting(L.LightningModule):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def predict_step(self, batch, batch_idx):
        if batch_idx == 1:
            raise self.exc
        return batch


@pytest.mark.parametrize("exc", [KeyboardInterrupt, Terminated])
def test_interrupt_in_predict_is_reraised(exc):
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False)
    with pytest.raises(exc) as err:
        predict(trainer, Interrupting(exc), dataloaders=torch.utils.data.DataLoader(list(range(4)), batch_size=1))
    assert type(err.value) is exc
    # Lightning ignores SIGINT after an interrupt; the next Ctrl-C must work again.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_plain_predict_still_returns():
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False)
    before = list(trainer.callbacks)
    out = predict(trainer, Interrupting(KeyboardInterrupt), dataloaders=torch.utils.data.DataLoader([0], batch_size=1))
    assert [int(x) for x in out] == [0] and trainer.callbacks == before  # its helper callback is gone
