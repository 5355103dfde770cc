"""The prompt DataModule: a population's generation requests in large, length-bucketed batches.

Rows of a batch may belong to different candidates (``PerRowDecoding`` keeps each row's knobs).
Requests are ordered by token budget, then system prompt, then prompt length, before they are cut
into batches: a batch runs until its longest row stops, so rows with similar budgets and lengths
waste the least, and rows with one system prompt share its prefill (``generation.shared_prefill``).
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


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of at most ``batch_size`` positions, bucketed by token budget, system prompt and prompt length."""

    def __init__(self, requests: list[GenerationRequest], batch_size: int):
        def length(pos: int) -> int:
            r = requests[pos]
            return len(r.prompt) + len(r.config.system_prompt_text or "")

        order = sorted(range(len(requests)), key=lambda p: (requests[p].config.max_new_tokens,
                                                            requests[p].config.system_prompt_text or "", length(p)))
        self.batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

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
            batch_sampler=BucketBatchSampler(self.requests, self.batch_size),
            collate_fn=_collate,
            num_workers=0,
        )
