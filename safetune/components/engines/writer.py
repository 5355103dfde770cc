"""The prediction writer that hands every finished generation batch on at once (to be cached, counted).

A crash therefore loses at most the batch in flight.
"""

from __future__ import annotations

from typing import Callable

from lightning.pytorch.callbacks import BasePredictionWriter


class DeliveringWriter(BasePredictionWriter):
    def __init__(self, deliver: Callable[[list], None]):
        super().__init__(write_interval="batch")
        self.deliver = deliver

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        self.deliver(prediction)
