"""The prediction writer that stores every finished generation batch in the cache at once."""

from __future__ import annotations

from typing import Callable

from lightning.pytorch.callbacks import BasePredictionWriter

from safetune.cache import Cache


class CacheWriter(BasePredictionWriter):
    """Writes each finished batch to the cache and reports progress."""

    def __init__(self, cache: Cache | None, keys: dict[int, str], on_batch: Callable[[int], None] | None):
        super().__init__(write_interval="batch")
        self.cache, self.keys, self.on_batch = cache, keys, on_batch

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        if self.cache is not None:
            self.cache.put_many("generation", {self.keys[g.index]: g.__dict__ for g in prediction})
        if self.on_batch:
            self.on_batch(len(prediction))
