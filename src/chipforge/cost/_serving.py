"""How a chip serves an LLM: the dtype it serves in and the tensor-parallel group it needs.

Stated once here for the TCO (:func:`chipforge.cost.llm_serving_tco`), the DSE's serving
metrics and the report. The bytes a chip holds come from the workload memory model
(:class:`chipforge.workloads.LLMMemory`), the same one ``chipforge.perf.estimate`` checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from chipforge.arch import ChipSpec, load_chip
from chipforge.cost._nodes import CostError
from chipforge.workloads import MAX_CHIPS, USABLE_MEMORY_FRACTION, LLMConfig, LLMMemory

# narrowest first: a chip serves in the narrowest format its matrix units run
SERVING_DTYPES = ("fp8_e4m3", "int8", "bf16")
# the workload memory model's limit, under the name cost has always exported
MAX_TENSOR_PARALLEL = MAX_CHIPS


def serving_dtype(chip: ChipSpec, preferred: Sequence[str] = SERVING_DTYPES) -> str | None:
    """The first of ``preferred`` that the chip's matrix units run, or None."""
    return next((d for d in preferred if chip.macs_per_cycle(d) > 0), None)


def serving_bytes_per_chip(cfg: LLMConfig, batch: int, context_len: int, dtype: str,
                           tp: int) -> float:
    """Weights and KV cache that one chip of a ``tp`` group holds, as ``llm_decode`` shards
    them: weights split ``tp`` ways, KV heads split until each chip has one (then
    replicated, as Megatron does), and the cache capped by the model's sliding window.
    (The decode's transient activations, which :func:`tensor_parallel_size` also counts,
    are left out.)"""
    part = LLMMemory(cfg, "decode", batch, context_len, dtype).footprint(tp)
    return part.weights_bytes + part.kv_cache_bytes


def tensor_parallel_size(chip: ChipSpec | str, cfg: LLMConfig, batch: int, context_len: int,
                         dtype: str = "bf16", *,
                         usable_fraction: float = USABLE_MEMORY_FRACTION,
                         max_tp: int = MAX_TENSOR_PARALLEL) -> int:
    """The smallest power-of-two tensor-parallel group, at most ``max_tp`` chips, whose
    chips each hold their share of the weights, the KV cache and the decode's transient
    activations (``LLMMemory(cfg, "decode", ...).footprint(tp)``) in ``usable_fraction``
    of their memory: the split ``chipforge.perf.estimate(..., parallel="auto")`` picks.

    Raises :class:`CostError` when no such group exists.
    """
    spec = load_chip(chip) if isinstance(chip, str) else chip
    model = LLMMemory(cfg, "decode", batch, context_len, dtype)
    for tp, _ in model.splits(max_tp):
        if model.footprint(tp).fits(spec.memory.capacity_bytes, usable_fraction):
            return tp
    raise CostError(f"model {cfg.name!r} (batch {batch}, context {context_len}, {dtype}) "
                    f"does not fit {max_tp} x chip {spec.name!r} "
                    f"({spec.memory.capacity_bytes / 1e9:g} GB each); expected a smaller "
                    f"batch or context")
