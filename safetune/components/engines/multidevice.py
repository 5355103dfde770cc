"""Multi-device generation: Lightning DDP in a child process; cache and search stay in this one.

Lightning's ``ddp`` strategy re-runs the current script once per extra device, so it cannot run
inside a search (every rank would re-run the search). ``run_multidevice`` therefore writes the job
(model ref, batch size, accelerator, devices, precision, strategy) and the requests to a temporary
folder and runs ``python -m safetune.components.engines.multidevice FOLDER``. That process calls
``Trainer.predict`` with ``devices=N``; each rank generates for its own shard of whole decoding
configurations and a prediction writer appends every finished batch, with the request indices, to
``rank-K.jsonl``. The parent reads those files while the child runs (progress and cache writes
per batch: a crash loses at most the batches in flight), then puts the answers back in order.

``DispatchingEngine`` (``base.py``) re-indexes, consults the cache, generates each distinct request
once through this backend and checks that every request was answered exactly once. Backends keep
the requests' positions as indices and shard by whole configurations, so each rank sees the same
batches as a single-process ``TransformersEngine`` given the same list.

The worker uses the single-process engine's ``GenerationModule`` (``engine.module``) and
``PromptDataModule``: the two pieces that ``TransformersEngine`` itself hands to
``Trainer.predict``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from safetune.cache import Cache
from safetune.components.engines.base import ModelEngine, engine_info
from safetune.components.requests import Generation, GenerationRequest, chat_template_source
from safetune.config import DecodingConfig
from safetune.errors import SafetuneError
from safetune.models import ModelRef

# Variables a DDP launcher sets for its ranks: a child that inherited them would think it is one.
_RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "GLOBAL_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
WORKER_ERROR = "safetune-worker error:"  # prefix of the worker's one-line failure report on stderr
STRATEGIES = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


# --- pieces shared with the Ray engine --------------------------------------------------------------

def split_by_config(requests: list[GenerationRequest], parts: int) -> list[list[GenerationRequest]]:
    """At most ``parts`` non-empty slices, each made of whole decoding configurations.

    Configurations keep their order of first appearance; a new slice starts when a configuration's
    midpoint (in requests) passes the current slice's share, or when every remaining configuration
    is needed to give each remaining worker one. So slices are contiguous, roughly equal in size,
    and use min(parts, configurations) workers. A candidate never straddles two workers.
    """
    if parts < 1:
        raise SafetuneError(f"cannot split requests into {parts} parts")
    units: dict[DecodingConfig, list[GenerationRequest]] = {}
    for r in requests:
        units.setdefault(r.config, []).append(r)
    parts = min(parts, len(units))
    total = len(requests)
    slices: list[list[GenerationRequest]] = [[]]
    start = 0
    for i, unit in enumerate(units.values()):
        past_share = int((start + len(unit) / 2) * parts / total) >= len(slices)
        needed = len(units) - i <= parts - len(slices)
        if slices[-1] and len(slices) < parts and (past_share or needed):
            slices.append([])
        slices[-1].extend(unit)
        start += len(unit)
    return [sorted(s, key=lambda r: r.index) for s in slices if s]


def tokenizer_info(ref: ModelRef, dtype: str) -> dict:
    """The single-process engine's ``info()``, computed without loading the model or tokenizer."""
    return engine_info(ref, chat_template_source(ref.path), dtype)


def request_to_dict(r: GenerationRequest) -> dict:
    return {"index": r.index, "prompt": r.prompt, "config": r.config.to_dict(), "seed": r.seed, "sample": r.sample}


def request_from_dict(d: dict) -> GenerationRequest:
    return GenerationRequest(d["index"], d["prompt"], DecodingConfig.from_dict(d["config"]), d["seed"], d["sample"])


# --- the multi-device job -------------------------------------------------------------------------

@dataclass(frozen=True)
class MultiDeviceJob:
    """What the child process needs besides the requests (written as job.json)."""

    ref: dict  # ModelRef.to_dict()
    batch_size: int = 16
    accelerator: str = "cpu"
    devices: int = 2
    precision: str = "32-true"
    strategy: str = "ddp"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise SafetuneError(f"devices must be >= 1 (got {self.devices})")
        if self.batch_size < 1:
            raise SafetuneError(f"batch_size must be >= 1 (got {self.batch_size})")
        if self.strategy not in STRATEGIES:
            raise SafetuneError(f"unknown multi-device strategy {self.strategy!r}; known: {', '.join(STRATEGIES)}")


class RankFiles:
    """Reads the ranks' JSONL prediction files incrementally: only complete lines, each once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.offsets: dict[Path, int] = {}
        self.per_rank: dict[int, int] = {}

    def poll(self) -> list[Generation]:
        out: list[Generation] = []
        for path in sorted(self.folder.glob("rank-*.jsonl")):
            with path.open("rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next poll
            self.offsets[path] = self.offsets.get(path, 0) + len(complete)
            rows = [Generation(**json.loads(line)) for line in complete.splitlines() if line.strip()]
            rank = int(path.stem.split("-")[1])
            self.per_rank[rank] = self.per_rank.get(rank, 0) + len(rows)
            out.extend(rows)
        return out


def last_error_line(stderr_path: Path) -> str:
    """The worker's own failure line if it wrote one, else the last non-empty stderr line."""
    lines = [ln.strip() for ln in stderr_path.read_text(errors="replace").splitlines() if ln.strip()]
    marked = [ln for ln in lines if ln.startswith(WORKER_ERROR)]
    if marked:
        return marked[-1][len(WORKER_ERROR):].strip()
    return lines[-1] if lines else "no output on stderr"


def _child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _RANK_VARIABLES}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def run_multidevice(
    requests: list[GenerationRequest],
    job: MultiDeviceJob,
    deliver: Callable[[list[Generation]], None] | None = None,
    poll_seconds: float = 0.5,
) -> tuple[list[Generation], dict[int, int]]:
    """Generate ``requests`` with ``Trainer.predict(devices=job.devices)`` in a child process.

    Returns the answers in the requests' order and how many each rank produced; ``deliver`` gets
    every finished batch while the child runs. Request indices must be distinct: they tie answers
    to requests. A failing child raises ``SafetuneError`` with its last stderr line.
    """
    indices = [r.index for r in requests]
    if len(set(indices)) != len(indices):
        raise SafetuneError("multi-device requests need distinct indices")
    if not requests:
        return [], {}
    with tempfile.TemporaryDirectory(prefix="safetune-ddp-") as tmp:
        folder = Path(tmp)
        (folder / "job.json").write_text(json.dumps(dataclasses.asdict(job)))
        with (folder / "requests.jsonl").open("w") as f:
            for r in requests:
                f.write(json.dumps(request_to_dict(r)) + "\n")
        answers: dict[int, Generation] = {}

        def take(batch: list[Generation]) -> None:
            for g in batch:
                if g.index in answers:
                    raise SafetuneError(f"request {g.index} was answered twice")
                answers[g.index] = g
            if batch and deliver:
                deliver(batch)

        files = RankFiles(folder)
        stderr_path = folder / "stderr.txt"
        with stderr_path.open("wb") as err:
            # Own session: on failure or Ctrl-C the whole group (rank 0 and the ranks it launched) ends.
            proc = subprocess.Popen(
                [sys.executable, "-m", "safetune.components.engines.multidevice", str(folder)],
                stdout=subprocess.DEVNULL, stderr=err, env=_child_env(), start_new_session=True,
            )
            try:
                while True:
                    try:
                        code = proc.wait(timeout=poll_seconds)
                        break
                    except subprocess.TimeoutExpired:
                        take(files.poll())
            except BaseException:
                _end_group(proc)
                raise
        take(files.poll())  # batches written just before the exit
        if code != 0:
            raise SafetuneError(f"multi-device generation failed (exit {code}): {last_error_line(stderr_path)}")
        missing = [i for i in indices if i not in answers]
        if missing or len(answers) != len(indices):
            raise SafetuneError(f"multi-device generation left {len(missing)} request(s) unanswered")
        return [answers[i] for i in indices], dict(files.per_rank)


def _end_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class MultiDeviceEngine(ModelEngine):
    """``TransformersEngine`` outputs from ``devices`` > 1 devices, via a DDP child process per call.

    Each call pays a process start and one model load per rank, so this pays off for large
    populations on several GPUs; the cache and progress stay in the calling process.
    """

    def __init__(self, ref: ModelRef, cache: Cache | None = None, *, strategy: str = "ddp", **settings):
        settings.setdefault("devices", 2)
        super().__init__(ref, cache, **settings)
        if self.devices < 2:
            raise SafetuneError(f"the multi-device engine needs devices >= 2 (got {self.devices}); use 'transformers'")
        self.job = MultiDeviceJob(ref.to_dict(), self.batch_size, self.accelerator, self.devices, self.precision,
                                  strategy, self.dtype)
        self._info = tokenizer_info(ref, self.dtype)
        self.last_ranks: dict[int, int] = {}  # answers per rank in the last call

    def info(self) -> dict:
        return dict(self._info)

    def _dispatch(self, unique: list[GenerationRequest], deliver: Callable[[list[Generation]], None]) -> None:
        # No more ranks than configurations: a rank with nothing to do would only load the model.
        n_configs = len({r.config for r in unique})
        job = dataclasses.replace(self.job, devices=min(self.job.devices, n_configs))
        _, self.last_ranks = run_multidevice(unique, job, deliver)


# --- the child process ----------------------------------------------------------------------------

def _worker_pieces():
    """Lightning classes for the child, built here so the parent never needs them at import time."""
    import lightning as L
    from lightning.pytorch.callbacks import BasePredictionWriter

    from safetune.components.datamodule import PromptDataModule

    class ShardDataModule(L.LightningDataModule):
        """Each rank's dataloader holds its own slice of whole configurations (no sampler injection)."""

        def __init__(self, requests: list[GenerationRequest], batch_size: int):
            super().__init__()
            self.requests, self.batch_size = requests, batch_size

        def predict_dataloader(self):
            world, rank = self.trainer.world_size, self.trainer.global_rank
            shards = split_by_config(self.requests, world)
            shard = shards[rank] if rank < len(shards) else []
            return PromptDataModule(shard, self.batch_size).predict_dataloader()

    class IndexedJsonlWriter(BasePredictionWriter):
        """Appends each finished batch to rank-K.jsonl (one Generation with its index per line)."""

        def __init__(self, folder: Path):
            super().__init__(write_interval="batch")
            self.folder = folder

        def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                               dataloader_idx=0):
            path = self.folder / f"rank-{trainer.global_rank}.jsonl"
            with path.open("a") as f:
                f.write("".join(json.dumps(dataclasses.asdict(g)) + "\n" for g in prediction))

    return L, ShardDataModule, IndexedJsonlWriter


def worker_main(folder: Path) -> None:
    import torch

    from safetune.components.engines.registry import get_engine
    from safetune.components.predict import quiet_lightning

    job = MultiDeviceJob(**json.loads((folder / "job.json").read_text()))
    requests = [request_from_dict(json.loads(line)) for line in (folder / "requests.jsonl").read_text().splitlines()]
    if job.accelerator == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // job.devices))  # ranks share the cores
    logging.basicConfig(level=logging.WARNING)
    quiet_lightning()
    L, ShardDataModule, IndexedJsonlWriter = _worker_pieces()
    # devices=1: the single-process engine, used only for its model and LightningModule.
    engine = get_engine("transformers", ref=ModelRef(**job.ref), cache=None, batch_size=job.batch_size,
                        accelerator=job.accelerator, devices=1, precision=job.precision, dtype=job.dtype)
    trainer = L.Trainer(
        accelerator=job.accelerator, devices=job.devices, strategy=job.strategy, precision=job.precision,
        use_distributed_sampler=False,  # ShardDataModule shards by configuration itself
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[IndexedJsonlWriter(folder)],
    )
    trainer.predict(engine.module, datamodule=ShardDataModule(requests, job.batch_size), return_predictions=False)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"{WORKER_ERROR} usage: python -m safetune.components.engines.multidevice FOLDER", file=sys.stderr)
        return 2
    try:
        worker_main(Path(argv[0]))
    except Exception as exc:  # the parent reports this one line; the traceback stays above it
        import traceback

        traceback.print_exc()
        message = " ".join(str(exc).split()) or "(no message)"
        print(f"{WORKER_ERROR} {type(exc).__name__}: {message}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
