"""The fused MoE layer (routing, grouped expert GEMMs, combine) on one chip.

The call TensorRT-LLM's ``CutlassFusedMoE.forward`` makes (aiconfigurator
collector/trtllm/collect_moe.py; kernels from TensorRT-LLM
cpp/tensorrt_llm/kernels/cutlass_kernels/moe_gemm and mixtureOfExperts), one rank, no
communication:

1. routing: top-k over every token's logits for all experts, softmax over the k picked
   (``RenormalizeMoeRoutingMethod``);
2. expert maps: sort the (token, expert) pairs by local expert, first-token offsets;
3. expand: gather each routed token's row into its expert's contiguous block (fp8: the
   static per-tensor quantization to e4m3 happens in this copy: on the measured H100 the
   fp8 rows' fixed cost is no larger than bf16's, so it is no kernel of its own);
4. grouped GEMM 1: per local expert ``[load, hidden] x [hidden, up_columns]`` (gated:
   ``2 inter/tp``, gate and up fused; non-gated: ``inter/tp``);
5. the activation (SwiGLU over the gate/up halves, or squared ReLU; fp8: output quantized
   for the next GEMM);
6. grouped GEMM 2: per local expert ``[load, inter/tp] x [inter/tp, hidden]``;
7. finalize: each token's k expert rows scaled by their routing weights and summed.

The grouped GEMMs run all experts' CTA tiles in one launch: CUTLASS's SM90 grouped GEMM
is a persistent TMA warp-specialized kernel, so the tiles of every expert
(``ceil(load / tm) x ceil(n / tn)`` each) are shared out over the SMs, only the first
operand load is exposed, and each active expert's weights come from DRAM once. The other
passes stream the token activations through DRAM. A power-law op is timed for each of its
draws and the times averaged, as the collector averages its 5 forwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from chipforge.arch import ChipSpec
from chipforge.machine import DRAM_LATENCY_S, Efficiency
from chipforge.ops import MoE, Op
from chipforge.perf._energy import op_energy
from chipforge.perf._estimate import Estimate, make_estimate
from chipforge.perf._matmul import (
    GPU_MAX_CTAS_PER_SM,
    GPU_STAGES,
    GPU_TILES,
    gpu_k_slice,
    gpu_step_cycles,
    matrix_unit,
    search_matmul,
    shared_buffer_s,
)

ACT_BYTES = 2.0  # bf16 hidden states, GEMM outputs and the combined result
ROUTE_ID_BYTES = 4.0  # int32 expert ids, fp32 routing weights (TensorRT-LLM's routing)
# assumption: torch.topk over a row of E logits is a radix select: a few passes over the
# row with a compare and a histogram update per element each; ~8 operations per logit
TOPK_OPS_PER_LOGIT = 8.0
# kernels one call launches, from the TensorRT-LLM code path named above: routing =
# torch.topk, the int32 cast of the ids, the float cast of the picked logits and their
# softmax (RenormalizeMoeRoutingMethod.apply_pytorch: its fused kernel takes top-k <= 16
# only); assumption: expert maps = the fused build-maps/sort kernel and the TMA-stride
# set-up (2); expand, activation and finalize one each; the two grouped GEMMs
ROUTING_KERNELS = 4
MAP_KERNELS = 2
KERNELS = ROUTING_KERNELS + MAP_KERNELS + 3 + 2
# assumption: TensorRT-LLM's expand and finalize kernels launch a fixed grid of 8 CTAs per
# SM that walks all tokens x topk expanded rows (local or not) in a grid-stride loop, each
# step waiting on a dependent load of the row's permutation index from DRAM; the walk then
# costs ceil(tokens x topk / (8 x SMs)) DRAM latencies. On the even rows of h100/moe.csv the
# time left over beyond the local work grows by 0.73 ns per (token, expert) pair at every
# ep, hidden size and dtype; 2 kernels x 400 ns / (8 x 132 SMs) = 0.76 ns
ROW_WALK_CTAS_PER_SM = 8
ACTIVATION_OPS = 6  # per output element (chipforge.ops ELEMENTWISE_FLOPS["swiglu"])
# CTA tiles (m x n) of the warp-specialized grouped GEMM on wgmma GPUs: its two consumer
# warpgroups each issue m64 wgmmas, so a tile has 128 or 256 rows (TensorRT-LLM
# cutlass_heuristic.cpp get_candidate_tiles_sm90, GROUPED_GEMM: CtaShape128x16 ... 128x256,
# 256x128); every expert's row count is padded up to the tile's m
GROUPED_WGMMA_TILES = ((128, 16), (128, 32), (128, 64), (128, 128), (128, 256), (256, 128))
# assumption: TensorRT-LLM's Hopper grouped GEMM stores its outputs straight from the
# accumulator registers (cutlass::epilogue::PtrArrayNoSmemWarpSpecialized, its sm90 MoE
# launcher) after each tile's main loop, which the cooperative schedule does not overlap;
# an SM writes to L2 at 64 B/clk and a wgmma fragment's 4-byte stores fill half of each
# 32-byte sector: 32 B/clk of tile output
GROUPED_EPILOGUE_BYTES_PER_CYCLE = 32.0
# assumption: when a CTA's next tile is another expert's, the ptr-array kernel rewrites
# its TMA descriptors in global memory and fences them (CUTLASS sm90 ptr-array
# tensormaps_perform_update / tensormaps_fence_acquire) before the new operands can be
# requested: the fence's round trip and the first loads (2 DRAM latencies) are exposed
GROUP_SWITCH_LATENCIES = 2


@dataclass(frozen=True)
class _Phase:
    """One kernel's (or a grouped GEMM's) busy times and traffic."""

    compute_s: float
    memory_s: float
    overhead_s: float
    dram_bytes: float
    macs: float = 0.0
    vector_ops: float = 0.0

    @property
    def seconds(self) -> float:
        return max(self.compute_s, self.memory_s) + self.overhead_s


def _stream(chip: ChipSpec, eff: Efficiency, nbytes: float, ops: float = 0.0) -> _Phase:
    """A memory-bound vector pass: its bytes through DRAM, its ops on the vector units."""
    bw = chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency
    return _Phase(ops / (chip.vector_flops() * eff.clock_fraction), nbytes / bw, 0.0,
                  nbytes, vector_ops=ops)


def _row_walk(chip: ChipSpec, eff: Efficiency, expanded_rows: int, nbytes: float,
              ops: float = 0.0) -> _Phase:
    """A pass over all expanded rows: its traffic, or its dependent-load walk if longer."""
    phase = _stream(chip, eff, nbytes, ops)
    steps = ceil(expanded_rows / (ROW_WALK_CTAS_PER_SM * chip.cores.count))
    return _Phase(phase.compute_s, max(phase.memory_s, steps * DRAM_LATENCY_S), 0.0,
                  phase.dram_bytes, vector_ops=ops)


def _grouped_gpu(chip: ChipSpec, eff: Efficiency, loads: tuple[int, ...], n: int, k: int,
                 dtype: str, itemsize: float) -> _Phase:
    """All local experts' tiles in one tensor-core launch; the fastest CTA tile wins."""
    mu = matrix_unit(chip, dtype)
    sms = chip.cores.count
    macs_per_cycle = mu.count * mu.macs_per_cycle[dtype]
    hz = chip.clock_hz * eff.clock_fraction
    active = [c for c in loads if c]
    pairs = sum(active)
    # each active expert's weights once, each routed row in once, out once (bf16)
    dram = len(active) * k * n * itemsize + pairs * k * itemsize + pairs * n * ACT_BYTES
    memory_s = dram / (chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency)
    best: _Phase | None = None
    tile_list = GROUPED_WGMMA_TILES if mu.mma_operands == "shared_memory" else GPU_TILES
    tk = gpu_k_slice(chip, itemsize)
    for tm, tn in tile_list:
        stage = (tm + tn) * tk * itemsize
        if GPU_STAGES * stage > chip.cores.local_sram.size_bytes:
            continue
        tiles = sum(ceil(c / tm) for c in active) * ceil(n / tn)
        step_cycles = gpu_step_cycles(chip, mu, tm, tn, itemsize, macs_per_cycle, hz)
        # a persistent kernel: each SM's CTA slots take their share of the tiles
        per_sm = ceil(tiles / (sms * GPU_MAX_CTAS_PER_SM)) * GPU_MAX_CTAS_PER_SM
        k_steps = ceil(k / tk)
        compute_s = per_sm * k_steps * step_cycles / hz
        # every tile streams its A and B panels through L2 (no cluster multicast in the
        # grouped kernels): the SMs' L2 read rate bounds their main loops together
        l2_bytes = tiles * ((tm + tn) * k_steps * tk * itemsize
                            + tm * tn * ACT_BYTES)
        compute_s = max(compute_s, shared_buffer_s(chip, eff, l2_bytes))
        if mu.mma_operands == "shared_memory":
            compute_s += per_sm * tm * tn * ACT_BYTES / GROUPED_EPILOGUE_BYTES_PER_CYCLE / hz
            compute_s += (_group_switches(active, n, tm, tn, sms) * GROUP_SWITCH_LATENCIES
                          * DRAM_LATENCY_S)
        # its producer warps load the next tile during the current one's math, so only
        # the first operand load is exposed (not one per wave of tiles)
        phase = _Phase(compute_s, memory_s, eff.pipeline_latency_s, dram,
                       macs=float(pairs) * n * k)
        if best is None or phase.seconds < best.seconds:
            best = phase
    assert best is not None, "no GPU tile fits the shared memory"
    return best


def _group_switches(active: list[int], n: int, tm: int, tn: int, sms: int) -> int:
    """Expert changes one SM meets: the persistent scheduler deals tile i to SM i mod sms,
    so an expert with t tiles is met by min(t, sms) of the SMs, once each."""
    tiles = [ceil(c / tm) * ceil(n / tn) for c in active]
    return ceil(sum(min(t, sms) for t in tiles) / sms)


def _grouped_other(chip: ChipSpec, eff: Efficiency, loads: tuple[int, ...], n: int, k: int,
                   dtype: str, itemsize: float) -> _Phase:
    """Our own accelerators: one GEMM per active expert, each through the mapping search,
    run back to back (the compiler emits no grouped kernel): their busy times add, and
    the sum is booked to the side (compute or memory) that dominates it."""
    compute_s = memory_s = overhead_s = dram = macs = 0.0
    for c in loads:
        if not c:
            continue
        cost = search_matmul(chip, c, n, k, 1, dtype, itemsize, eff)
        busy = cost.busy_s(chip, eff, cost.dram_bytes)
        if cost.compute_s >= busy:
            compute_s += busy
        else:
            memory_s += busy
        overhead_s += cost.latency_s
        dram += cost.dram_bytes
        macs += cost.macs
    total = compute_s + memory_s
    compute_bound = compute_s >= memory_s
    return _Phase(total if compute_bound else 0.0, 0.0 if compute_bound else total,
                  overhead_s, dram, macs=macs)


def _grouped(chip: ChipSpec, eff: Efficiency, loads: tuple[int, ...], n: int, k: int,
             dtype: str, itemsize: float) -> _Phase:
    if matrix_unit(chip, dtype).kind == "tensor_core":  # as _grouped_kernels
        return _grouped_gpu(chip, eff, loads, n, k, dtype, itemsize)
    return _grouped_other(chip, eff, loads, n, k, dtype, itemsize)


def moe_phases(op: MoE, chip: ChipSpec, eff: Efficiency,
               loads: tuple[int, ...]) -> list[_Phase]:
    """The kernels of one forward whose rank computes ``loads`` (tokens per local expert)."""
    t, h, e, ki = op.tokens, op.hidden, op.experts, op.local_inter
    w = op.itemsize  # the experts' GEMM operand type
    pairs = sum(loads)
    all_pairs = t * op.topk
    routing = _stream(chip, eff, t * e * ACT_BYTES + all_pairs * 2 * ROUTE_ID_BYTES,
                      t * e * TOPK_OPS_PER_LOGIT)
    maps = _stream(chip, eff, 2 * all_pairs * ROUTE_ID_BYTES, 2 * all_pairs)
    expand = _row_walk(chip, eff, all_pairs, t * h * ACT_BYTES + pairs * h * w, t * h)
    up_n = op.up_columns
    act = _stream(chip, eff, pairs * up_n * ACT_BYTES + pairs * ki * w,
                  pairs * ki * ACTIVATION_OPS)
    finalize = _row_walk(chip, eff, all_pairs, pairs * h * ACT_BYTES + t * h * ACT_BYTES
                         + all_pairs * ROUTE_ID_BYTES * 2, 2 * pairs * h)
    up = _grouped(chip, eff, loads, up_n, h, op.dtype, w)
    down = _grouped(chip, eff, loads, h, ki, op.dtype, w)
    return [routing, maps, expand, up, act, down, finalize]


def moe_estimate(op: Op, chip: ChipSpec, eff: Efficiency) -> Estimate:
    """Time, FLOPs, bytes and energy of one fused MoE call, averaged over its draws."""
    assert isinstance(op, MoE)
    draws = op.loads
    launch_s = _launches(chip, op) * eff.launch_overhead_s
    compute_s = memory_s = overhead_s = dram = macs = vector_ops = 0.0
    for loads in draws:
        phases = moe_phases(op, chip, eff, loads)
        # kernels run one after another: each one's busy time adds to its bound's side
        for p in phases:
            if p.compute_s >= p.memory_s:
                compute_s += p.compute_s
            else:
                memory_s += p.memory_s
            overhead_s += p.overhead_s
            dram += p.dram_bytes
            macs += p.macs
            vector_ops += p.vector_ops
    n = len(draws)
    compute_s, memory_s, dram = compute_s / n, memory_s / n, dram / n
    overhead_s = overhead_s / n + launch_s
    macs, vector_ops = macs / n, vector_ops / n
    seconds = compute_s + memory_s + overhead_s
    energy = op_energy(chip, macs=macs, dtype=op.dtype, vector_ops=vector_ops,
                       local_bytes=2 * dram, dram_bytes=dram, seconds=seconds)
    peak = chip.peak_flops(op.dtype) or chip.peak_flops("bf16")
    # make_estimate overlaps compute and memory; the kernels here are serial, so the sum of
    # both sides is reported as the busy phase of the larger one
    busy = compute_s + memory_s
    return make_estimate(compute_s=busy if compute_s >= memory_s else 0.0,
                         memory_s=busy if compute_s < memory_s else 0.0,
                         overhead_s=overhead_s, flops=op.flops, hbm_bytes=dram,
                         energy=energy, ideal_s=op.flops / peak,
                         mapping=f"fused MoE: {_launches(chip, op):g} kernels, "
                                 f"{_gemm_kind(chip, op)} "
                                 f"over {op.local_experts} local experts, {len(draws)} "
                                 "draw(s)")


def _grouped_kernels(chip: ChipSpec, op: MoE) -> bool:
    return matrix_unit(chip, op.dtype).kind == "tensor_core"


def _launches(chip: ChipSpec, op: MoE) -> float:
    """Kernels (dispatches) per call: a GPU's two grouped GEMMs are one launch each; on our
    accelerators each active expert's two GEMMs are dispatched on their own."""
    if _grouped_kernels(chip, op):
        return KERNELS
    return KERNELS - 2 + 2 * op.active_experts


def _gemm_kind(chip: ChipSpec, op: MoE) -> str:
    return "grouped GEMMs" if _grouped_kernels(chip, op) else "one GEMM per expert"

