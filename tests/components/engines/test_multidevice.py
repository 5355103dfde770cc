"""Multi-device generation: a two-rank Lightning DDP job (CPU, gloo) in a child process.

The child is expensive (two ranks each import torch and load the model), so one call on the
conformance suite's mixed population serves the suite and the checks of the ranks; the rest test
the pieces directly.
"""

import dataclasses
import shutil

import pytest

from safetune.cache import Cache
from safetune.components.engines.base import DispatchingEngine
from safetune.components.generation import Generation, GenerationRequest
from safetune.components.engines.multidevice import (
    WORKER_ERROR, MultiDeviceEngine, MultiDeviceJob, RankFiles, last_error_line,
    split_by_config,
)
from safetune.config import DecodingConfig
from safetune.errors import SafetuneError
from safetune.models import resolve_model
from safetune.testing.engines import EngineSuite, run_engine

PROMPTS = ["How do I bake bread?", "Hi", "What is the capital of France and why is it famous?", "Tell me a story"]
GREEDY = DecodingConfig(temperature=0.0, max_new_tokens=10)
PENALTY = DecodingConfig(temperature=0.0, max_new_tokens=10, repetition_penalty=0.5)
HOT = DecodingConfig(temperature=1.3, top_k=0, max_new_tokens=10)


def requests_for(configs, prompts=PROMPTS):
    return [GenerationRequest(0, p, c, 0, 0) for c in configs for p in prompts]


@pytest.fixture(scope="module")
def engine_run(ref, single, tmp_path_factory):
    """One two-rank DDP call (and a cached second one), shared by the conformance suite and the checks below."""
    engine = MultiDeviceEngine(ref, cache=Cache(tmp_path_factory.mktemp("ddp") / "cache.sqlite"), batch_size=2,
                               devices=2, dtype="float32")
    return run_engine(engine, single.generate)


class TestConformance(EngineSuite):
    pass


def test_both_ranks_work_and_answer_each_request_once(engine_run):
    ranks = engine_run.engine.last_ranks  # of the first call: the second never starts the child
    assert sorted(ranks) == [0, 1] and min(ranks.values()) > 0
    assert sum(ranks.values()) == engine_run.first_stats["generated"]


def test_worker_failure_is_a_one_line_error(tiny_llama, tmp_path):
    broken = tmp_path / "no-weights"
    shutil.copytree(tiny_llama, broken)
    (broken / "model.safetensors").unlink()  # the tokenizer loads (in the parent), the model does not
    engine = MultiDeviceEngine(resolve_model(str(broken)), batch_size=2, devices=2)
    with pytest.raises(SafetuneError, match=r"^multi-device generation failed \(exit 1\): OSError: ") as err:
        engine.generate(requests_for([GREEDY, PENALTY]))
    assert "\n" not in str(err.value)


def test_info_matches_single_process_engine(engine_run, single):
    # Identical outputs, identical info: the candidate-result cache is shared between the engines.
    assert engine_run.engine.info() == single.info()


def test_split_keeps_candidates_whole_contiguous_and_balanced():
    a, b, c = (DecodingConfig(temperature=0.0, max_new_tokens=n) for n in (4, 5, 6))
    reqs = [dataclasses.replace(r, index=i) for i, r in enumerate(
        requests_for([a], ["x"]) + requests_for([b], ["y"]) + requests_for([c], [str(i) for i in range(10)]))]
    slices = split_by_config(reqs, 2)
    assert [[r.index for r in s] for s in slices] == [[0, 1], list(range(2, 12))]
    # Interleaved configurations still go whole to one slice each.
    mixed = [GenerationRequest(i, str(i), [a, b][i % 2], 0, 0) for i in range(6)]
    assert [{r.config for r in s} for s in split_by_config(mixed, 2)] == [{a}, {b}]
    # More parts than configurations: one slice per configuration, none empty.
    three = split_by_config(reqs, 5)
    assert len(three) == 3 and sorted(r.index for s in three for r in s) == list(range(12))
    with pytest.raises(SafetuneError):
        split_by_config(reqs, 0)


def test_rank_files_read_complete_lines_once(tmp_path):
    row = '{"index": %d, "response": "r", "prompt_tokens": 3, "new_tokens": 1, "finished": true}\n'
    files = RankFiles(tmp_path)
    (tmp_path / "rank-0.jsonl").write_text(row % 0 + (row % 1)[:20])  # second line still being written
    (tmp_path / "rank-1.jsonl").write_text(row % 7)
    assert sorted(g.index for g in files.poll()) == [0, 7]
    with (tmp_path / "rank-0.jsonl").open("a") as f:
        f.write((row % 1)[20:])
    assert [g.index for g in files.poll()] == [1]
    assert files.poll() == []
    assert files.per_rank == {0: 2, 1: 1}


def test_last_error_line_prefers_the_worker_report(tmp_path):
    path = tmp_path / "stderr.txt"
    path.write_text(f"Traceback...\nOSError: boom\n{WORKER_ERROR} OSError: boom\nrank 1 teardown noise\n")
    assert last_error_line(path) == "OSError: boom"
    path.write_text("warning\nValueError: bad\n\n")
    assert last_error_line(path) == "ValueError: bad"


class ScriptedEngine(DispatchingEngine):
    """A backend that answers as told, to check the bookkeeping every dispatching engine shares."""

    def __init__(self, mode: str):
        super().__init__(cache=None)
        self.mode = mode

    def info(self) -> dict:
        return {"engine": "scripted"}

    def _dispatch(self, unique, deliver):
        gens = [Generation(r.index, r.prompt.upper(), 1, 1, True) for r in unique]
        if self.mode == "twice":
            gens.append(gens[0])
        elif self.mode == "missing":
            gens = gens[1:]
        elif self.mode == "stranger":
            gens.append(Generation(999, "?", 1, 1, True))
        deliver(gens)


@pytest.mark.parametrize("mode,message", [
    ("twice", "answered twice"), ("missing", "got no answer"), ("stranger", "not given"),
])
def test_every_request_must_be_answered_exactly_once(mode, message):
    with pytest.raises(SafetuneError, match=message):
        ScriptedEngine(mode).generate(requests_for([GREEDY]))


def test_dispatching_engine_reassembles_by_index_and_dedupes():
    reqs = requests_for([GREEDY, HOT], ["b", "a", "b"])
    out = ScriptedEngine("ok").generate(reqs)
    assert [g.response for g in out] == ["B", "A", "B"] * 2
    assert [g.index for g in out] == list(range(6))


def test_bad_settings_are_one_line_errors(ref):
    with pytest.raises(SafetuneError, match="devices >= 2"):
        MultiDeviceEngine(ref, devices=1)
    with pytest.raises(SafetuneError, match="unknown multi-device strategy"):
        MultiDeviceJob(ref.to_dict(), strategy="fsdp")
