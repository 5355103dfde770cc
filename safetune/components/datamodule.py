"""The prompt DataModule: generation requests in batches that share one decoding configuration.

Batches never mix candidates (one ``GenerationConfig`` per ``generate`` call) and, within a
candidate, prompts are sorted by length so rows in a batch need little padding.
"""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, Dataset, Sampler

from safetune.components.generation import GenerationRequest


class RequestDataset(Dataset):
    def __init__(self, requests: list[GenerationRequest]):
        self.requests = list(requests)

    def __len__(self) -> int:
        return len(self.requests)

    def __getitem__(self, i: int) -> GenerationRequest:
        return self.requests[i]


class GroupedBatchSampler(Sampler[list[int]]):
    """Batches of at most ``batch_size`` positions, each within one request group."""

    def __init__(self, requests: list[GenerationRequest], batch_size: int):
        groups: dict[tuple, list[int]] = {}
        for pos, request in enumerate(requests):
            groups.setdefault(request.group, []).append(pos)
        self.batches = []
        for positions in groups.values():
            positions.sort(key=lambda p: len(requests[p].prompt))  # length bucketing
            for start in range(0, len(positions), batch_size):
                self.batches.append(positions[start:start + batch_size])

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _collate(items: list[GenerationRequest]) -> list[GenerationRequest]:
    return list(items)  # requests are plain objects; tokenisation happens in predict_step


class PromptDataModule(L.LightningDataModule):
    def __init__(self, requests: list[GenerationRequest], batch_size: int = 16):
        super().__init__()
        self.requests = list(requests)
        self.batch_size = batch_size

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            RequestDataset(self.requests),
            batch_sampler=GroupedBatchSampler(self.requests, self.batch_size),
            collate_fn=_collate,
            num_workers=0,
        )
