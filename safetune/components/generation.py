"""Batched, chat-templated generation as a Lightning module.

One ``predict_step`` call generates for a batch of ``GenerationRequest``s that may come from
different candidates: each row keeps its own system prompt and decoding knobs (``PerRowDecoding``),
so a whole population shares large batches. Left padding makes every row's prompt end where
generation starts. A batch that does not fit in memory is split in halves and retried.

``decode_compacting`` is the decode loop: transformers' ``generate`` keeps every row in the batch
until all rows have stopped, so a row that stopped early (or has a lower ``max_new_tokens``) still
costs a forward each step; the loop instead drops finished rows from the batch (KV cache, mask,
positions, ``PerRowDecoding`` state) and gives the same tokens. Its prefill computes each distinct
system-prompt prefix once per module (``shared_prefill`` with a ``PrefixStore``: a population repeats a
few system prompts in every batch), the user turns in chunks of similar length (little padding), and
each distinct whole prompt once (``unique_rows``: candidates sharing a system prompt ask the same
prompts). Models whose cache cannot be row-selected (see ``compaction_supported``) keep ``generate``.
"""

from __future__ import annotations

import contextlib
import inspect

import lightning as L
import torch

from safetune.components.requests import (  # noqa: F401 - re-exported: the light half of this module
    DTYPES,
    Generation,
    GenerationRequest,
    cpu_has_native_bf16,
    load_tokenizer,
    mean_nll,
    render_chat,
    resolve_dtype,
)
from safetune.components.sampling import PerRowDecoding
from safetune.config import DecodingConfig


def load_model(path: str, dtype: str = "float32"):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.eval()
    return model


def load_causal_lm(path: str, dtype: str = "float32"):
    """Tokenizer (left padding, a pad token) and model in eval mode."""
    return load_tokenizer(path), load_model(path, dtype)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _selectable_layer_types() -> tuple[type, ...]:
    """Cache layers whose ``reorder_cache`` gathers the layer's whole per-row state.

    ``reorder_cache`` (beam search's reordering) is an ``index_select`` on the batch dimension of every
    state tensor a layer holds (keys/values; conv and recurrent states of linear attention), so with
    fewer indices it keeps just those rows. Exact types only: a subclass may hold more per-row state.
    (``batch_select_indices`` is not used: linear-attention layers lack it, and the hybrid
    linear+full layer inherits the key/value-only one from ``DynamicLayer``.)
    """
    from transformers import cache_utils

    names = ("DynamicLayer", "DynamicSlidingWindowLayer", "LinearAttentionLayer",
             "LinearAttentionAndFullAttentionLayer", "LinearAttentionAndSlidingWindowAttentionLayer")
    return tuple(getattr(cache_utils, n) for n in names if hasattr(cache_utils, n))


def compaction_supported(model) -> bool:
    """Whether ``decode_compacting`` reproduces ``generate`` for this model (else ``generate`` is used).

    Yes when generate() would build a plain ``DynamicCache`` from the config whose layers are all
    row-selectable and not compileable as a whole (a compileable cache makes generate() build 4D
    masks and maybe compile the forward), and the model keeps transformers' stock input preparation
    (position ids from the mask, slicing, cache creation) that the loop copies. Llama, Qwen3 and
    Qwen3.5 text models (``Qwen3_5ForCausalLM``, what ``AutoModelForCausalLM`` loads for Qwen3.5:
    linear-attention + full-attention layers) qualify; encoder-decoders, remote-code models, models
    overriding generate()'s preparation (e.g. ``Qwen3_5ForConditionalGeneration``'s 3D positions,
    mamba-style caches) and static/quantized/indexed cache layers do not.
    """
    from transformers import DynamicCache, GenerationMixin

    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return False
    is_remote = getattr(model, "is_remote_code", None)
    if callable(is_remote) and is_remote():
        return False
    cls = type(model)
    for name in ("prepare_inputs_for_generation", "_prepare_cache_for_generation",
                 "_prepare_position_ids_for_generation", "_update_model_kwargs_for_generation", "_prefill", "_sample"):
        if getattr(cls, name, None) is not getattr(GenerationMixin, name, None):
            return False
    supports_dynamic = getattr(model, "_supports_default_dynamic_cache", None)
    if not callable(supports_dynamic) or not supports_dynamic():
        return False
    if "position_ids" not in inspect.signature(model.forward).parameters:
        return False
    try:
        cache = DynamicCache(config=config.get_text_config(decoder=True))
    except Exception:  # an unknown layer type: not ours to select
        return False
    selectable = _selectable_layer_types()
    return bool(cache.layers) and not cache.is_compileable and all(type(layer) in selectable for layer in cache.layers)


def _growing_layer_class():
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A ``DynamicLayer`` whose keys and values live in a buffer with ``room`` spare positions.

        ``DynamicLayer.update`` appends a decode step with ``torch.cat``, copying the layer's whole cache
        every step (quadratic in the answer's length; 7% of a SmolLM2 population's time on a CPU).
        Here a step is written in place and ``keys``/``values`` are views of the filled part, so the
        attention sees exactly the tensors it would see otherwise. Rows leave by ``reorder_cache``
        (the compacting loop), which selects rows of the buffer.
        """

        def __init__(self, room: int):
            super().__init__()
            self.room = room
            self._keys = self._values = None
            self._length = 0

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = key_states.shape[-2]
            if self._keys is None or self._length + n > self._keys.shape[-2]:
                size = self._length + n + self.room
                keys = key_states.new_empty((*key_states.shape[:-2], size, key_states.shape[-1]))
                values = value_states.new_empty((*value_states.shape[:-2], size, value_states.shape[-1]))
                if self._length:
                    keys[..., :self._length, :] = self._keys[..., :self._length, :]
                    values[..., :self._length, :] = self._values[..., :self._length, :]
                self._keys, self._values = keys, values
            self._keys[..., self._length:self._length + n, :] = key_states
            self._values[..., self._length:self._length + n, :] = value_states
            self._length += n
            self.keys, self.values = self._keys[..., :self._length, :], self._values[..., :self._length, :]
            return self.keys, self.values

        def reorder_cache(self, beam_idx) -> None:
            if self._keys is not None:
                self._keys = self._keys.index_select(0, beam_idx.to(self._keys.device))
                self._values = self._values.index_select(0, beam_idx.to(self._values.device))
                self.keys, self.values = self._keys[..., :self._length, :], self._values[..., :self._length, :]

    return GrowingLayer


def new_cache(model, room: int = 0):
    """A ``DynamicCache`` for ``model``; where every layer is a plain ``DynamicLayer`` (see
    ``prefix_sharing_supported``) and ``room`` > 0, each grows in place (``GrowingLayer``)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    if room > 0 and cache.layers and all(type(layer) is DynamicLayer for layer in cache.layers):
        growing = _growing_layer_class()
        cache.layers = [growing(room) for _ in cache.layers]
    return cache


def prefix_sharing_supported(model) -> bool:
    """Whether ``shared_prefill`` may seed this model's cache: every layer a plain ``DynamicLayer``
    (keys and values only, no sliding window, no recurrent state that padding in the middle of a
    row would corrupt). Llama, Qwen2 and Qwen3 qualify; Qwen3.5's linear-attention layers do not."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    except Exception:
        return False
    return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)


class PrefixStore:
    """The keys and values of the last ``capacity`` system-prompt prefixes (by token ids), least
    recently used first out. A prefix's keys and values depend only on its tokens, so a later batch
    reuses them as they are (SmolLM2: about 5 MB per prefix in float32)."""

    def __init__(self, capacity: int = 32):
        from collections import OrderedDict

        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()

    def get(self, prefix: tuple):
        kv = self._items.get(prefix)
        if kv is not None:
            self._items.move_to_end(prefix)
        return kv

    def put(self, prefix: tuple, kv: list) -> None:
        self._items[prefix] = kv
        self._items.move_to_end(prefix)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# Rows per call of the user-turn prefill (see shared_prefill): enough tokens per call for efficient
# matrix multiplies (16 rows x ~16 tokens), few enough rows that each chunk's padding stays small.
PREFILL_CHUNK_ROWS = 16
# Rows the packed linear weights are laid out for (any batch size works; see packed_linear).
PACK_ROWS = 64


def shared_prefill(model, input_ids: torch.Tensor, mask: torch.Tensor, prefix_lens: list[int], pad_id: int,
                   extra: dict, room: int = 0, store: "PrefixStore | None" = None):
    """The prefill with each distinct shared prefix (system prompt + template) computed once.

    Rows of a population repeat a few system prompts, and the prefix often holds most of a row's
    prompt tokens (SmolLM2: 30 of ~40; the ``policy`` prompt 115 of ~150). Each distinct prefix is run
    once as a batch of one; its keys and values are copied into the rows that share it, left-padded
    to the longest prefix; the rest of each row (the user turn) is then prefilled on top, in chunks of
    rows of similar length (``PREFILL_CHUNK_ROWS``). The row
    layout is ``[pad][prefix][pad][rest]``: position ids count only real tokens (``cumsum(mask) - 1``),
    so every token keeps the position it has in the unshared prompt, and the mask hides the padding,
    so the logits equal the unshared prefill's up to float rounding. ``prefix_lens[row]`` is 0 for a
    row that shares nothing. With ``store`` a prefix's keys and values are kept for later batches (a
    population repeats a few system prompts in every batch and generation). Returns (last logits, cache,
    model mask, last position per row, number of distinct prefixes, number of them computed).
    """
    from transformers import DynamicCache

    config = model.config.get_text_config(decoder=True)
    device = input_ids.device
    pads = (mask == 0).sum(dim=1).tolist()
    rows = [input_ids[r, pads[r]:] for r in range(input_ids.shape[0])]
    groups: dict[tuple, list[int]] = {}
    for r, p in enumerate(prefix_lens):
        if p:
            groups.setdefault(tuple(rows[r][:p].tolist()), []).append(r)
    width_p = max(prefix_lens)
    width_s = max(len(row) - p for row, p in zip(rows, prefix_lens))
    cache = new_cache(model, room)
    layers_kv = None
    computed = 0
    for prefix, members in groups.items():
        kv = None if store is None else store.get(prefix)
        if kv is None:
            one = DynamicCache(config=config)
            ids = torch.tensor([prefix], device=device)
            model(input_ids=ids, position_ids=torch.arange(len(prefix), device=device)[None], past_key_values=one,
                  use_cache=True, return_dict=True, **extra)
            kv = [(layer.keys, layer.values) for layer in one.layers]
            computed += 1
            if store is not None:
                store.put(prefix, kv)
        if layers_kv is None:  # [batch, kv heads, longest prefix, head dim] per layer, zeros under padding
            layers_kv = [(k.new_zeros((len(rows), *k.shape[1:2], width_p, k.shape[-1])),
                          v.new_zeros((len(rows), *v.shape[1:2], width_p, v.shape[-1]))) for k, v in kv]
        index = torch.tensor(members, device=device)
        for (keys, values), (k, v) in zip(layers_kv, kv):
            keys[index, :, width_p - len(prefix):] = k
            values[index, :, width_p - len(prefix):] = v
    full_mask = mask.new_zeros((len(rows), width_p + width_s))
    rest = input_ids.new_full((len(rows), width_s), pad_id)
    rest_lens = [len(row) - p for row, p in zip(rows, prefix_lens)]
    for r, (row, p) in enumerate(zip(rows, prefix_lens)):
        full_mask[r, width_p - p:width_p] = 1
        full_mask[r, width_p + width_s - rest_lens[r]:] = 1
        rest[r, width_s - rest_lens[r]:] = row[p:]
    positions = (full_mask.long().cumsum(-1) - 1).masked_fill(full_mask == 0, 0)[:, width_p:]
    # The user turns differ in length (SmolLM2 on HarmBench: 16 tokens on average, 31 for the longest
    # of a batch), so one padded call would spend half its work on padding. Rows sorted by that length
    # are prefilled in chunks, each padded only to its own longest; each chunk's keys and values land
    # in the common layout at the right end of the row (zeros under the mask elsewhere).
    order = sorted(range(len(rows)), key=lambda r: rest_lens[r])
    pad = (0, 0, 0, width_s)  # the prefixes, then room for the user turns
    merged = [(torch.nn.functional.pad(keys, pad), torch.nn.functional.pad(values, pad)) for keys, values in layers_kv]
    logits = None
    for start in range(0, len(order), PREFILL_CHUNK_ROWS):
        chunk = order[start:start + PREFILL_CHUNK_ROWS]
        index = torch.tensor(chunk, device=device)
        w = max(rest_lens[r] for r in chunk)
        part = DynamicCache(config=config)
        for layer, (keys, values) in zip(part.layers, layers_kv):
            layer.update(keys[index], values[index])
        part_mask = torch.cat([full_mask[index, :width_p], full_mask[index, width_p + width_s - w:]], dim=1)
        out = model(input_ids=rest[index, width_s - w:], attention_mask=part_mask,
                    position_ids=positions[index, width_s - w:], past_key_values=part, use_cache=True,
                    return_dict=True, **extra)
        last = out.logits[:, -1].to(dtype=torch.float32, device=device)
        if logits is None:
            logits = last.new_empty((len(rows), last.shape[-1]))
        logits[index] = last
        for (keys, values), layer in zip(merged, part.layers):  # only the user turns are new
            keys[index, :, width_p + width_s - w:] = layer.keys[:, :, width_p:]
            values[index, :, width_p + width_s - w:] = layer.values[:, :, width_p:]
    for layer, (keys, values) in zip(cache.layers, merged):
        layer.update(keys, values)
    return logits, cache, full_mask, positions[:, -1:], len(groups), computed


def unique_rows(input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[list[int], list[int]]:
    """The first row of each group of identical rows (same tokens, same padding) and, for every row,
    the position of its group's first row in that list."""
    first: dict[tuple, int] = {}
    reps: list[int] = []
    inverse = []
    for row, (ids, m) in enumerate(zip(input_ids.tolist(), mask.tolist())):
        key = (tuple(ids), tuple(m))
        if key not in first:
            first[key] = len(reps)
            reps.append(row)
        inverse.append(first[key])
    return reps, inverse


def decode_compacting(model, enc: dict, decoding: PerRowDecoding, limits: list[int], stop_ids: list[int],
                      stats: dict | None = None, prefix_lens: list[int] | None = None,
                      pad_id: int = 0, dedupe: bool = True, prefix_store: PrefixStore | None = None) -> list[list[int]]:
    """Greedy over ``decoding``'s choice, like ``generate``, but finished rows leave the batch.

    Each step feeds exactly what generate() would (transformers 5: ``prepare_inputs_for_generation``
    after ``_prepare_position_ids_for_generation``): the prefill gets the left-padded prompt, the mask
    (dropped when it holds no padding, as generate() does), position ids ``cumsum(mask) - 1`` with
    padding at 0, a ``DynamicCache`` built from the config and ``logits_to_keep=1``; each later step
    the last token, the mask grown by one and the last position + 1. ``decoding`` sees the active
    rows' full ids (padded prompt + tokens so far), as generate() passes them.

    A row ends when it emits a stop id or holds ``limits[row]`` tokens; it is then removed from the
    cache, mask, positions, ids and ``decoding``. Returns each original row's tokens (its stop id
    included when it stopped). ``stats``, if given, receives the forward rows, steps and compactions.
    With ``prefix_lens`` (see ``shared_prefill``; needs ``prefix_sharing_supported``) the prefill
    computes each shared prefix once (once per ``prefix_store``'s lifetime when given). With ``dedupe`` rows
    whose prompts are identical are prefilled once.
    """
    input_ids, mask = enc["input_ids"], enc["attention_mask"]
    device = input_ids.device
    width = input_ids.shape[1]
    positions = mask.long().cumsum(-1) - 1
    positions = positions.masked_fill(mask == 0, 0)
    if bool((mask == 1).all()):
        mask = None
    extra = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    stops = torch.tensor(sorted(set(stop_ids)), device=device)
    row_limits = torch.tensor(limits, device=device)
    active = list(range(input_ids.shape[0]))  # original row of each row still in the batch
    generated: list[list[int]] = [[] for _ in active]
    forward_rows = steps = compactions = prefixes = computed = 0
    cache = None

    def forward(step_ids: torch.Tensor, step_positions: torch.Tensor) -> torch.Tensor:
        nonlocal forward_rows, steps
        out = model(input_ids=step_ids.contiguous(), attention_mask=mask, position_ids=step_positions.contiguous(),
                    past_key_values=cache, use_cache=True, return_dict=True, **extra)
        forward_rows += step_ids.shape[0]
        steps += 1
        return out.logits[:, -1].to(copy=True, dtype=torch.float32, device=device)

    # The prefill runs once per distinct prompt: a population repeats each (system prompt, prompt) pair
    # once per candidate that shares the system prompt, and identical inputs give identical keys,
    # values and logits, so duplicates copy their representative's (see unique_rows).
    if dedupe:
        reps, inverse = unique_rows(input_ids, enc["attention_mask"])
    else:
        reps = inverse = list(range(input_ids.shape[0]))
    sub = torch.tensor(reps, device=device)
    if prefix_lens and any(prefix_lens[r] for r in reps):
        logits, cache, mask, positions, prefixes, computed = shared_prefill(
            model, input_ids[sub], enc["attention_mask"][sub], [prefix_lens[r] for r in reps], pad_id, extra,
            room=max(limits), store=prefix_store)
        forward_rows, steps = len(reps), 1
    else:
        cache = new_cache(model, room=max(limits))
        positions, mask = positions[sub], None if mask is None else mask[sub]
        logits = forward(input_ids[sub], positions)
    if len(reps) < len(inverse):
        index = torch.tensor(inverse, device=device)
        cache.reorder_cache(index)
        logits, positions = logits[index], positions[index]
        mask = None if mask is None else mask[index]
    # generate() runs its decode steps (not the prefill) under this context (MoE kernels off CPU).
    optimize = getattr(model, "_optimize_model_for_decode", None)
    with optimize() if callable(optimize) else contextlib.nullcontext():
        while True:
            tokens = decoding.choose(input_ids, logits)
            input_ids = torch.cat([input_ids, tokens[:, None]], dim=-1)
            for row, token in zip(active, tokens.tolist()):
                generated[row].append(token)
            done = torch.isin(tokens, stops) | (row_limits <= input_ids.shape[1] - width)
            if bool(done.all()):
                break
            # Compact as soon as any row finished. A finished row left in the batch costs a full forward
            # row every remaining step (every weight matmul plus attention over its cache), while dropping
            # it copies the kept rows' cache once, about what ``DynamicLayer.update``'s torch.cat already
            # copies every step, and this happens at most once per row. So it pays from the next step on.
            if bool(done.any()):
                keep = torch.nonzero(~done).flatten()
                cache.reorder_cache(keep)
                input_ids, positions, row_limits = input_ids[keep], positions[keep], row_limits[keep]
                mask = mask[keep] if mask is not None else None
                decoding.select(keep.cpu())
                active = [active[i] for i in keep.tolist()]
                compactions += 1
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            positions = positions[:, -1:] + 1
            logits = forward(input_ids[:, -1:], positions)
    if stats is not None:
        stats.update(forward_rows=forward_rows, steps=steps, compactions=compactions, shared_prefixes=prefixes,
                     prefixes_computed=computed, prefill_rows=len(reps))
    return generated


class GenerationModule(L.LightningModule):
    def __init__(self, model, tokenizer, template_kwargs: dict | None = None):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.template_kwargs = dict(template_kwargs or {})
        # Finished rows leave the batch (decode_compacting) when the model allows it; False: generate().
        self.compact = True
        self._compaction_supported: bool | None = None
        # Each distinct system-prompt prefix of a batch is prefilled once (shared_prefill), when the
        # model's cache allows it; False: every row prefills its whole prompt.
        self.share_prefix = True
        self._sharing_supported: bool | None = None
        self.prefix_store = PrefixStore()  # shared prefixes' keys and values, kept across batches
        # Rows with identical prompts (one per candidate sharing a system prompt) are prefilled once.
        self.dedupe_prompts = True
        # bfloat16 linear weights on a CPU are packed once for oneDNN (packed_linear: same bits,
        # fewer copies per step); done at the first batch, once Lightning has placed the model.
        self.pack_weights = True
        self.packed_layers: int | None = None  # how many were packed; None: not tried yet
        self._prefix_ids: dict = {}  # system prompt text -> token ids of the template before the user text
        self.last_decode: dict = {}  # the last batch's path and, for the compacting loop, forward rows
        # Nothing from the model's own generation_config.json may leak into a candidate's decoding:
        # each candidate's GenerationConfig is complete, and the model's default becomes neutral.
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig(
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        # Chat models end a turn with a special token that may differ from the tokenizer's eos.
        self.stop_ids = sorted(
            {
                i
                for i in (
                    tokenizer.eos_token_id,
                    tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None,
                    tokenizer.convert_tokens_to_ids("<|eot_id|>") if "<|eot_id|>" in tokenizer.get_vocab() else None,
                )
                if i is not None
            }
        )

    def generation_config(self, config: DecodingConfig):
        from transformers import GenerationConfig

        kwargs = config.generation_kwargs()
        gc = GenerationConfig(
            **kwargs,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.stop_ids,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        # The check lm-evaluation-harness learned the hard way (PR #1800): every requested knob
        # must be present, unchanged, in the config that goes to generate().
        for key, value in kwargs.items():
            if getattr(gc, key) != value:
                raise RuntimeError(f"generation config dropped {key}={value!r} (got {getattr(gc, key)!r})")
        gc.validate(strict=True)
        return gc

    @property
    def compacting(self) -> bool:
        """Whether batches go through ``decode_compacting`` (``compact`` on and the model supports it)."""
        if not self.compact:
            return False
        if self._compaction_supported is None:
            self._compaction_supported = compaction_supported(self.model)
        return self._compaction_supported

    @property
    def sharing(self) -> bool:
        """Whether the compacting loop prefills shared prefixes once (``prefix_sharing_supported``)."""
        if not (self.share_prefix and self.compacting):
            return False
        if self._sharing_supported is None:
            self._sharing_supported = prefix_sharing_supported(self.model)
        return self._sharing_supported

    def prefix_lengths(self, batch: list[GenerationRequest], ids: torch.Tensor, mask: torch.Tensor) -> list[int]:
        """Per row, how many leading prompt tokens it shares with other rows of the batch: the chat
        template rendered with its system prompt and an empty user turn, up to where the user text
        begins (at least one token of the row is left to prefill). 0 when no other row shares it."""
        lengths = []
        for row, request in enumerate(batch):
            key = request.config.system_prompt_text
            if key not in self._prefix_ids:
                text = render_chat(self.tokenizer, "", key, self.template_kwargs)
                self._prefix_ids[key] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            prefix = self._prefix_ids[key]
            tokens = ids[row][mask[row] == 1].tolist()
            n = 0
            while n < min(len(prefix), len(tokens) - 1) and prefix[n] == tokens[n]:
                n += 1
            lengths.append(n)
        counts: dict = {}
        for request, n in zip(batch, lengths):
            counts[(request.config.system_prompt_text, n)] = counts.get((request.config.system_prompt_text, n), 0) + 1
        return [n if counts[(r.config.system_prompt_text, n)] > 1 else 0 for r, n in zip(batch, lengths)]

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # Batches are plain request objects; tensors are made on the model's device in predict_step.
        return batch

    def predict_step(self, batch: list[GenerationRequest], batch_idx: int = 0, dataloader_idx: int = 0):
        try:
            return self._generate(batch)
        except Exception as exc:  # the largest batch that fits: halve and retry on out-of-memory
            if not is_out_of_memory(exc) or len(batch) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(batch) // 2
            return self.predict_step(batch[:half]) + self.predict_step(batch[half:])

    def _generate(self, batch: list[GenerationRequest]) -> list[Generation]:
        from transformers import GenerationConfig, LogitsProcessorList

        if self.pack_weights and self.packed_layers is None:
            from safetune.components.packed_linear import pack_linears

            self.packed_layers = pack_linears(self.model, rows=max(len(batch), PACK_ROWS))
        texts = [render_chat(self.tokenizer, r.prompt, r.config.system_prompt_text, self.template_kwargs) for r in batch]
        # The chat template already holds the special tokens; do not add a second BOS.
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        width = enc["input_ids"].shape[1]
        limits = [r.config.max_new_tokens for r in batch]
        decoding = PerRowDecoding(
            [r.config for r in batch], [r.rng_seed for r in batch], width,
            pad_lengths=(enc["attention_mask"] != 0).int().argmax(dim=1), stop_id=self.stop_ids[0],
        )
        # Extra tokenizer outputs (token_type_ids, ...) would need generate()'s handling: not compacted.
        if self.compacting and set(enc) <= {"input_ids", "attention_mask"}:
            stats = {"path": "compact"}
            prefix_lens = self.prefix_lengths(batch, enc["input_ids"], enc["attention_mask"]) if self.sharing else None
            with torch.inference_mode():
                new = decode_compacting(self.model, enc, decoding, limits, self.stop_ids, stats, prefix_lens,
                                        pad_id=self.tokenizer.pad_token_id, dedupe=self.dedupe_prompts,
                                        prefix_store=self.prefix_store)
        else:
            # generate() only takes the token PerRowDecoding chose for each row (greedy over its output).
            gc = GenerationConfig(
                do_sample=False, max_new_tokens=max(limits), pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.stop_ids, bos_token_id=self.tokenizer.bos_token_id,
            )
            with torch.inference_mode():
                out = self.model.generate(**enc, generation_config=gc, logits_processor=LogitsProcessorList([decoding]))
            new = [row.tolist() for row in out[:, width:]]
            stats = {"path": "generate"}
        # The batch's request indices and raw new tokens (stop ids included), for tests and debugging.
        self.last_decode = {**stats, "indices": [r.index for r in batch], "tokens": new}
        results = []
        for row, request in enumerate(batch):
            ids = new[row][: limits[row]]
            finished = False
            n_new = len(ids)
            for pos, token in enumerate(ids):
                if token in self.stop_ids:
                    n_new, finished = pos, True
                    break
            text = self.tokenizer.decode(ids[:n_new], skip_special_tokens=True).strip()
            results.append(
                Generation(
                    index=request.index,
                    response=text,
                    prompt_tokens=int(enc["attention_mask"][row].sum()),
                    new_tokens=n_new,
                    finished=finished,
                    nll=mean_nll(decoding.raw_logprobs[row][:n_new]),
                )
            )
        return results
