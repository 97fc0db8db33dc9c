"""What one serving replica's engine iteration costs: the step-cost model the serving
simulator (``_serve_sim``) runs on.

An iteration of a continuous-batching engine runs every scheduled token through the model
once: prefill chunks and one token per decoding sequence together. Its time is built from
the single-chip engine (``chipforge.perf.estimate`` over the ``chipforge.workloads`` LLM
graphs) and the cluster collectives, sampled once into small tables so the event loop
never calls the engine:

- body: every per-token op (QKV, O, SwiGLU MLP or MoE experts, norms, RoPE, KV writes) of
  ``llm_decode(cfg, batch=T)``: weights are read once per iteration and the matmuls run
  over its ``T`` tokens, so small ``T`` is bandwidth-bound and large ``T`` compute-bound;
  a curve over ``T``.
- head: the final norm, LM head and sampling softmax of the sequences that emit a token;
  a curve over sequences.
- attention: decode attention over the sequences' contexts (a surface over sequences and
  mean context) and causal prefill attention (a surface over prompts and prompt length).
- communication: tensor-parallel all-reduces (two per layer, Megatron-LM) and the
  embedding's, MoE all-to-alls, pipeline sends, all from ``collective_time`` on the
  replica's system; a curve over ``T``.
- the harness's fixed time per iteration (``ServingHarness``), zero for a plain prediction.

Pipeline parallelism is modelled as latency: one iteration passes through the ``pp``
stages in turn (their sends included); micro-batches of different iterations overlapping
in the pipeline are not modelled, so a ``pp > 1`` replica's throughput is a lower bound.
With ``ep > 1`` each of the ``ep`` expert-parallel ranks runs its own share of the tokens
(attention data-parallel, as ``llm_decode`` shards it) and the replica spans ``tp·ep·pp``
chips.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

from chipforge import ops
from chipforge.arch import DTYPES, ChipSpec
from chipforge.cluster._models import resolve_model
from chipforge.cluster._serve_grid import Curve, Surface
from chipforge.errors import ClusterError
from chipforge.workloads import (
    USABLE_MEMORY_FRACTION,
    LLMConfig,
    LLMMemory,
)

__all__ = ["ReplicaCost", "SERVING_HARNESSES", "ServingHarness", "replica_cost",
           "serving_harness"]


@dataclass(frozen=True)
class ServingHarness:
    """What a serving runtime adds beyond the kernels, as a property of its version.

    ``iteration_overhead_s``: fixed host time per engine iteration that the GPU waits for
    (scheduling, sampling, launch); ``kv_free_fraction``: the share of the memory left
    after weights and activations that the runtime gives the KV cache (None: the chip's
    ``USABLE_MEMORY_FRACTION`` of all memory, less weights and activations);
    ``block_tokens``: tokens per KV-cache page.
    """

    name: str
    iteration_overhead_s: float
    kv_free_fraction: float | None
    block_tokens: int
    source: str


# source: vLLM's default block_size is 16 tokens (engine arguments docs)
VLLM_BLOCK_TOKENS = 16
# source: TensorRT-LLM KvCacheConfig.tokens_per_block defaults to 64
TRTLLM_BLOCK_TOKENS = 64
# source: TensorRT-LLM perf-overview.md @258c7540 (v0.17): "we also use a higher KV cache
# percentage by setting --kv_cache_free_gpu_mem_fraction 0.95"
TRTLLM_BENCH_KV_FRACTION = 0.95

SERVING_HARNESSES: dict[str, ServingHarness] = {h.name: h for h in (
    ServingHarness("none", 0.0, None, VLLM_BLOCK_TOKENS,
                   "a prediction of the kernels alone, vLLM-style memory use"),
    # assumption: TensorRT-LLM's C++ runtime launches the whole iteration as one CUDA graph
    # (or back-to-back enqueued kernels) and overlaps its scheduling with the GPU, so no
    # fixed host time per iteration is added
    ServingHarness("trtllm-0.17", 0.0, TRTLLM_BENCH_KV_FRACTION, TRTLLM_BLOCK_TOKENS,
                   "trtllm-bench throughput, TensorRT-LLM v0.17 (perf-overview.md)"),
    ServingHarness("trtllm-0.6", 0.0, TRTLLM_BENCH_KV_FRACTION, TRTLLM_BLOCK_TOKENS,
                   "gptSessionBenchmark static batching, TensorRT-LLM v0.5/v0.6.1 "
                   "(performance.md)"),
)}


def serving_harness(name: str | ServingHarness | None) -> ServingHarness:
    if isinstance(name, ServingHarness):
        return name
    key = "none" if name is None else name
    if key not in SERVING_HARNESSES:
        raise ClusterError(f"harness={name!r}; expected one of {', '.join(SERVING_HARNESSES)}")
    return SERVING_HARNESSES[key]


@dataclass(frozen=True)
class ReplicaCost:
    """The :class:`StepCost` of one replica (``chips`` chips: ``tp`` x ``ep`` x ``pp``).

    ``iteration_s(prefill_tokens, prefill_attn_ctx, decode_seqs, decode_ctx_tokens)``:
    one iteration; ``prefill_attn_ctx`` is the sum over the iteration's prefill chunks of
    chunk tokens x keys attended (about ``n²/2`` for a whole ``n``-token prompt),
    ``decode_ctx_tokens`` the sum of the decoding sequences' contexts.
    ``kv_capacity_tokens`` is the replica's KV-cache capacity in tokens,
    ``kv_transfer_s(tokens)`` the time to send that many tokens' KV to another replica.
    """

    model: str
    chip: str
    tp: int
    pp: int
    ep: int
    dtype: str
    kv_dtype: str
    harness: ServingHarness
    chips: int
    kv_capacity_tokens: int
    kv_block_tokens: int
    weights_bytes_per_chip: float
    activations_bytes_per_chip: float
    kv_bytes_per_token_per_chip: float
    body: Curve
    head: Curve
    comm: Curve
    decode_attention: Surface
    prefill_attention: Surface
    kv_send: Curve
    basis: str

    def iteration_s(self, prefill_tokens: float, prefill_attn_ctx: float, decode_seqs: float,
                    decode_ctx_tokens: float) -> float:
        tokens = prefill_tokens + decode_seqs
        if tokens <= 0:
            return 0.0
        ep = self.ep
        per_rank = tokens / ep
        seconds = self.body(per_rank) + self.comm(per_rank) + self.harness.iteration_overhead_s
        seconds += self.head((decode_seqs + (prefill_tokens > 0)) / ep)
        if decode_seqs > 0:
            seconds += self.decode_attention(decode_seqs / ep, decode_ctx_tokens / decode_seqs)
        if prefill_tokens > 0 and prefill_attn_ctx > 0:
            # uniform prompts of n tokens: pairs = k·n²/2 and tokens = k·n
            length = max(2.0 * prefill_attn_ctx / prefill_tokens, 1.0)
            seconds += self.prefill_attention(prefill_tokens / length / ep, length * length)
        return seconds

    def kv_transfer_s(self, tokens: float) -> float:
        return self.kv_send(tokens) if tokens > 0 else 0.0

    @property
    def kv_capacity_bytes(self) -> float:
        return self.kv_capacity_tokens * self.kv_bytes_per_token_per_chip * self.ep


def _system(chip_or_system: Any, chips: int) -> Any:
    """The replica's system: a System as given (grown to ``chips`` when smaller), else the
    chip's default preset at ``chips`` chips."""
    from chipforge.cluster._system import System, system

    if isinstance(chip_or_system, System):
        if chip_or_system.chips >= chips:
            return chip_or_system
        return replace(chip_or_system, chips=chips)
    if isinstance(chip_or_system, str | ChipSpec):
        return system(chip_or_system, chips)
    raise ClusterError(f"chip={chip_or_system!r}; expected a chip name, a ChipSpec or a "
                       "System")


def _check_split(cfg: LLMConfig, tp: int, pp: int, ep: int) -> None:
    for name, value in (("tp", tp), ("pp", pp), ("ep", ep)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ClusterError(f"{name}={value!r}; expected a positive integer")
    if cfg.num_heads % tp or (cfg.num_kv_heads >= tp and cfg.num_kv_heads % tp):
        raise ClusterError(f"tp={tp} for model {cfg.name!r}: expected a divisor of its "
                           f"{cfg.num_heads} attention heads (and of its {cfg.num_kv_heads} "
                           "KV heads when it has at least tp of them)")
    if cfg.num_layers % pp:
        raise ClusterError(f"pp={pp} for model {cfg.name!r}: expected a divisor of its "
                           f"{cfg.num_layers} layers")
    if ep > 1 and (not cfg.num_experts or cfg.num_experts % ep):
        raise ClusterError(f"ep={ep} for model {cfg.name!r}: expected 1 for a dense model, "
                           f"else a divisor of its {cfg.num_experts} experts")


def _check_dtype(chip: ChipSpec, name: str, dtype: str) -> None:
    if dtype not in DTYPES:
        raise ClusterError(f"{name}={dtype!r}; expected one of {', '.join(DTYPES)}")
    if name == "dtype" and chip.macs_per_cycle(dtype) <= 0:
        raise ClusterError(f"dtype={dtype!r}: chip {chip.name!r} has no matrix units for it; "
                           "expected a dtype the chip runs (chipforge.cost.serving_dtype)")


def replica_cost(model: str | LLMConfig, chip_or_system: Any, tp: int = 1, pp: int = 1,
                 ep: int = 1, dtype: str = "bf16", kv_dtype: str | None = None,
                 harness: str | ServingHarness | None = None, *,
                 max_batch_tokens: int = 8192) -> ReplicaCost:
    """The step cost of one replica of ``model`` on ``tp·ep·pp`` chips of
    ``chip_or_system`` (a chip name, ChipSpec or System), weights in ``dtype``, KV cache in
    ``kv_dtype`` (default ``dtype``). ``max_batch_tokens`` (the scheduler's token budget)
    sizes the activation workspace reserved out of the KV cache's memory.

    Raises :class:`ClusterError` when the weights (and workspace) leave no room for a KV
    cache, naming the model, chip, split and bytes.
    """
    cfg = resolve_model(model)
    _check_split(cfg, tp, pp, ep)
    sysm = _system(chip_or_system, tp * ep * pp * 2)
    spec = sysm.chip
    kv_dtype = kv_dtype or dtype
    _check_dtype(spec, "dtype", dtype)
    _check_dtype(spec, "kv_dtype", kv_dtype)
    if not isinstance(max_batch_tokens, int) or max_batch_tokens < 1:
        raise ClusterError(f"max_batch_tokens={max_batch_tokens!r}; expected a positive int")
    return _replica_cost(cfg, sysm, tp, pp, ep, dtype, kv_dtype, serving_harness(harness),
                         max_batch_tokens)


@functools.lru_cache(maxsize=256)
def _replica_cost(cfg: LLMConfig, sysm: Any, tp: int, pp: int, ep: int, dtype: str,
                  kv_dtype: str, harness: ServingHarness, max_batch_tokens: int) -> ReplicaCost:
    from chipforge.cluster._serve_tables import (
        body_curve,
        comm_curve,
        decode_attention_surface,
        head_curve,
        kv_send_curve,
        prefill_attention_surface,
    )

    spec = sysm.chip
    mem = LLMMemory(cfg, "prefill", 1, max_batch_tokens, dtype, ep=ep).footprint(tp, pp)
    kv_heads = max(cfg.num_kv_heads // tp, 1)
    kv_per_token = 2 * cfg.num_layers / pp * kv_heads * cfg.head_dim * ops.dtype_bytes(kv_dtype)
    capacity = spec.memory.capacity_bytes
    left = capacity - mem.weights_bytes - mem.activations_bytes
    if harness.kv_free_fraction is None:
        kv_bytes = capacity * USABLE_MEMORY_FRACTION - mem.weights_bytes - mem.activations_bytes
        rule = f"{USABLE_MEMORY_FRACTION:.0%} of memory less weights and activations"
    else:
        kv_bytes = harness.kv_free_fraction * left
        rule = f"{harness.kv_free_fraction:.0%} of the memory left after weights and activations"
    split = f"tp={tp}" + (f" x ep={ep}" if ep > 1 else "") + (f" x pp={pp}" if pp > 1 else "")
    if kv_bytes < kv_per_token * harness.block_tokens:
        raise ClusterError(
            f"model {cfg.name!r} does not fit chip {spec.name!r} at {split} ({dtype}): "
            f"{mem.weights_bytes / 1e9:.1f} GB of weights and {mem.activations_bytes / 1e9:.1f} "
            f"GB of activations per chip leave {max(kv_bytes, 0.0) / 1e9:.2f} GB for the KV "
            f"cache of {capacity / 1e9:g} GB ({rule}); expected a larger tp or pp, or a "
            "narrower dtype")
    blocks = int(kv_bytes // (kv_per_token * harness.block_tokens))
    chips = tp * ep * pp
    args = (cfg, sysm, tp, pp, ep, dtype, kv_dtype)
    return ReplicaCost(
        cfg.name, spec.name, tp, pp, ep, dtype, kv_dtype, harness, chips,
        blocks * harness.block_tokens, harness.block_tokens, mem.weights_bytes,
        mem.activations_bytes, kv_per_token, body_curve(*args, max_batch_tokens),
        head_curve(*args, max_batch_tokens), comm_curve(*args, max_batch_tokens),
        decode_attention_surface(*args, max_batch_tokens),
        prefill_attention_surface(*args, max_batch_tokens),
        kv_send_curve(*args, kv_per_token),
        f"{cfg.name} on {chips} x {spec.name} ({split}), {dtype} weights, {kv_dtype} KV "
        f"cache in {rule}; harness {harness.name}")
