"""Linear layers whose bfloat16 weights are pre-packed once for oneDNN, on CPU.

Why: in eager mode every bfloat16 ``F.linear`` on a CPU hands oneDNN a plain weight matrix, which it
re-lays-out (packs) for its kernel on every call. A decode step multiplies small batches (64 rows,
fewer as rows finish) by every weight, so that repacking is a large share of the step. Packing each
weight once (``torch.ops.mkldnn._reorder_linear_weight``, what torch.compile's CPU backend does
under ``freezing``) and calling the packed kernel gives the same bits: measured on an AVX512-BF16 CPU,
identical outputs and 1.13x (64 rows) to 1.4x (16 rows) the throughput of a 576 x 1536 linear.

Only bfloat16 on CPU: in float32 oneDNN's packed kernel and the default BLAS round differently, and
this module must not change a single answer. So packing is gated by a probe: a layer is packed only
if the packed kernel reproduces ``F.linear`` bit for bit on inputs of 1 and ``rows`` rows.

The module structure and ``state_dict`` are untouched: each packed layer gets an instance-level
``forward`` (``unpack_linears`` deletes it), and the packed copy lives beside the weight (memory:
one more copy of the linear weights, e.g. 0.2 GB for SmolLM2-135M, 1 GB for a 0.5B model).
"""

from __future__ import annotations

import os

import torch

_PACKED = "_safetune_packed_weight"


def packing_supported(weight: torch.Tensor) -> bool:
    """bfloat16 weights on a CPU whose oneDNN has bfloat16 kernels."""
    mkldnn = torch.ops.mkldnn
    return (weight.device.type == "cpu" and weight.dtype == torch.bfloat16 and torch.backends.mkldnn.is_available()
            and hasattr(mkldnn, "_reorder_linear_weight") and hasattr(mkldnn, "_linear_pointwise")
            and hasattr(mkldnn, "_is_mkldnn_bf16_supported") and bool(mkldnn._is_mkldnn_bf16_supported()))


def pack_weight(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``weight`` ([out, in], as ``nn.Linear`` holds it) laid out once for oneDNN's kernel at ``rows`` rows."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows)


def packed_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` through a weight from ``pack_weight``."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


def _packed_forward(layer: torch.nn.Linear, packed: torch.Tensor):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return packed_linear(x, packed, layer.bias)

    return forward


def _reproduces(layer: torch.nn.Linear, packed: torch.Tensor, rows: int) -> bool:
    """Whether the packed kernel gives ``F.linear``'s exact bits on this layer (1 and ``rows`` rows)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n in sorted({1, rows}):
            x = torch.randn(n, 2, layer.in_features, generator=gen).to(layer.weight.dtype)
            expected = torch.nn.functional.linear(x, layer.weight, layer.bias)
            if not torch.equal(packed_linear(x, packed, layer.bias), expected):
                return False
    return True


def available_memory() -> int | None:
    """Bytes of memory available now, or None where that is not known: Linux's ``MemAvailable``
    (free memory plus the page cache it can drop; a model just read from disk sits in that cache),
    else the free pages ``sysconf`` reports."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def pack_linears(model: torch.nn.Module, rows: int = 64) -> int:
    """Pack every ``nn.Linear`` of ``model`` whose weight qualifies (see ``packing_supported``) and whose
    packed kernel reproduces it exactly; ``rows`` is the batch size the packing is tuned for (any batch
    size still works). Returns how many layers are packed. Calling it again packs nothing twice.

    The packed copies take as much memory as the weights again, so nothing is packed when that would
    use more than half of the memory available now (a 7B model in bfloat16 on a 24 GB machine)."""
    todo = [m for m in model.modules() if type(m) is torch.nn.Linear and packing_supported(m.weight)
            and _PACKED not in m.__dict__]
    free = available_memory()
    if free is not None and sum(m.weight.numel() * m.weight.element_size() for m in todo) > free / 2:
        todo = []
    todo_ids = {id(m) for m in todo}
    count = 0
    with torch.no_grad():
        for layer in model.modules():
            if _PACKED in layer.__dict__:
                count += 1
                continue
            if id(layer) not in todo_ids:
                continue
            packed = pack_weight(layer.weight, rows)
            if not _reproduces(layer, packed, rows):
                continue
            setattr(layer, _PACKED, packed)
            layer.forward = _packed_forward(layer, packed)
            count += 1
    return count


def unpack_linears(model: torch.nn.Module) -> int:
    """Undo ``pack_linears``: the stock ``F.linear`` again. Returns how many layers were unpacked."""
    count = 0
    for layer in model.modules():
        if _PACKED in layer.__dict__:
            del layer.forward
            delattr(layer, _PACKED)
            count += 1
    return count
