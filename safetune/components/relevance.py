"""Prompt-response relevance as a Lightning module: sentence-embedding cosine per pair.

An empty response scores 0. Prompt embeddings are computed once per distinct prompt, since a
search asks about the same prompts for every candidate.
"""

from __future__ import annotations

import lightning as L

from safetune.components.predict import quiet_lightning
import numpy as np
import torch
from torch.utils.data import DataLoader

from safetune.components.embeddings import DEFAULT_EMBEDDER, get_embedder

quiet_lightning()


class RelevanceModule(L.LightningModule):
    def __init__(self, embedder: str = DEFAULT_EMBEDDER, batch_size: int = 64):
        super().__init__()
        self.embedder_name = embedder
        self.encode_batch_size = batch_size
        self._prompt_cache: dict[str, np.ndarray] = {}

    @property
    def embedder(self):
        return get_embedder(self.embedder_name)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch  # pairs of strings; the embedder places its own tensors

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode(
            texts, batch_size=self.encode_batch_size, normalize_embeddings=True, convert_to_numpy=True
        )

    def predict_step(self, batch, batch_idx: int = 0, dataloader_idx: int = 0):
        prompts, responses = [p for p, _ in batch], [r for _, r in batch]
        missing = sorted({p for p in prompts if p not in self._prompt_cache})
        if missing:
            self._prompt_cache.update(zip(missing, self._encode(missing)))
        a = np.stack([self._prompt_cache[p] for p in prompts])
        b = self._encode(responses)
        sims = (a * b).sum(axis=1)
        sims[[not r.strip() for r in responses]] = 0.0
        return torch.from_numpy(sims.astype(np.float32))

    def score(self, prompts: list[str], responses: list[str], trainer: L.Trainer | None = None) -> np.ndarray:
        """Cosine per pair, run as a Lightning predict loop over batches of pairs."""
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses must have the same length")
        if not prompts:
            return np.zeros(0, dtype=np.float32)
        trainer = trainer or L.Trainer(
            accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
            enable_model_summary=False, enable_checkpointing=False,
        )
        loader = DataLoader(list(zip(prompts, responses)), batch_size=256, collate_fn=list)
        from safetune.components.predict import predict

        out = predict(trainer, self, dataloaders=loader)
        return torch.cat(out).numpy()
