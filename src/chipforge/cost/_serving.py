"""How a chip serves an LLM: the dtype it serves in and the tensor-parallel group it needs.

Stated once here for the TCO (:func:`chipforge.cost.llm_serving_tco`), the DSE's serving
metrics and the report.
"""

from __future__ import annotations

from collections.abc import Sequence

from chipforge.arch import ChipSpec, load_chip
from chipforge.cost._nodes import CostError
from chipforge.ops import dtype_bytes
from chipforge.workloads import LLMConfig

# narrowest first: a chip serves in the narrowest format its matrix units run
SERVING_DTYPES = ("fp8_e4m3", "int8", "bf16")
# source: vLLM's default gpu_memory_utilization is 0.9 (engine arguments docs): the rest
# holds activations, workspace and fragmentation; applied to every chip alike.
USABLE_MEMORY_FRACTION = 0.9
MAX_TENSOR_PARALLEL = 64


def serving_dtype(chip: ChipSpec, preferred: Sequence[str] = SERVING_DTYPES) -> str | None:
    """The first of ``preferred`` that the chip's matrix units run, or None."""
    return next((d for d in preferred if chip.macs_per_cycle(d) > 0), None)


def serving_bytes_per_chip(cfg: LLMConfig, batch: int, context_len: int, dtype: str,
                           tp: int) -> float:
    """Weights and KV cache that one chip of a ``tp`` group holds, as ``llm_decode`` shards
    them: weights split ``tp`` ways, KV heads split until each chip has one (then
    replicated, as Megatron does), and the cache capped by the model's sliding window."""
    size = dtype_bytes(dtype)
    kv_len = min(context_len, cfg.sliding_window or context_len)
    kv_heads = max(cfg.num_kv_heads // tp, 1)
    kv = batch * kv_len * 2 * cfg.num_layers * kv_heads * cfg.head_dim * size
    return cfg.param_count() * size / tp + kv


def tensor_parallel_size(chip: ChipSpec | str, cfg: LLMConfig, batch: int, context_len: int,
                         dtype: str = "bf16", *,
                         usable_fraction: float = USABLE_MEMORY_FRACTION,
                         max_tp: int = MAX_TENSOR_PARALLEL) -> int:
    """The smallest power-of-two tensor-parallel group, at most ``max_tp`` chips, whose
    chips each hold their share of the weights and the KV cache
    (:func:`serving_bytes_per_chip`) in ``usable_fraction`` of their memory.

    Raises :class:`CostError` when no such group exists.
    """
    spec = load_chip(chip) if isinstance(chip, str) else chip
    usable = spec.memory.capacity_bytes * usable_fraction
    tp = 1
    # once a power of two does not divide the head count, no larger one does
    while tp <= max_tp and cfg.num_heads % tp == 0:
        if serving_bytes_per_chip(cfg, batch, context_len, dtype, tp) <= usable:
            return tp
        tp *= 2
    raise CostError(f"model {cfg.name!r} (batch {batch}, context {context_len}, {dtype}) "
                    f"does not fit {max_tp} x chip {spec.name!r} "
                    f"({spec.memory.capacity_bytes / 1e9:g} GB each); expected a smaller "
                    f"batch or context")
