"""Fused attention on GPUs (FlashAttention-2 prefill, split-KV decode) and on systolic
chips (QK^T and PV through the mapping search)."""

from __future__ import annotations

from math import ceil

from chipforge.arch import ChipSpec
from chipforge.machine import Efficiency
from chipforge.ops import Attention
from chipforge.perf._energy import op_energy
from chipforge.perf._estimate import Estimate, make_estimate
from chipforge.perf._matmul import matrix_unit as _matrix_unit_for
from chipforge.perf._matmul import search_matmul

# FlashAttention-2 blocking for head_dim 128 on GPUs (Dao 2023, Sec. 3.3): Br x Bc tiles
FA_BLOCK_Q, FA_BLOCK_KV = 128, 64
# assumption: split-KV decode (FlashDecoding, Dao et al. 2023) splits a sequence's cache
# into chunks of at least this many tokens so each CTA streams a useful burst
DECODE_MIN_CHUNK = 256
# exposed dependent memory phases per attention CTA: load Q, load the first K/V block,
# store O. A GEMM tile exposes one prologue+epilogue (pipeline_latency_s); an attention
# CTA, one per SM, serializes three such phases. assumption: the count 3 is structural,
# but it was chosen among 2, 3, 4 by the error on the A100 attention tables (see
# docs/validation.md), so treat it as fitted; it is the same for every chip.
ATTENTION_EXPOSED_PHASES = 3


def attention_estimate(op: Attention, chip: ChipSpec, eff: Efficiency) -> Estimate:
    """Fused attention (FlashAttention-2 prefill, FlashDecoding decode): scores stay on chip,
    QK^T and PV run on the matrix units, the online softmax on the vector units (FA2 does not
    overlap the two). One kernel, plus the combine kernel when a decode's KV cache is split.
    RoPE and the KV-cache write are separate ops of the workload graph."""
    mu = _matrix_unit_for(chip, op.dtype)
    if mu.kind == "tensor_core":
        compute_s, rounds, kernels, note = _attention_tiles(op, chip, eff)
    else:
        compute_s, rounds, kernels, note = _attention_systolic(op, chip, eff)
    kv_bytes = op.kv_bytes
    q_tiles = ceil(op.q_len / FA_BLOCK_Q)
    # K/V are re-read by every q tile unless the shared buffer keeps them
    rereads = 1 if kv_bytes <= chip.shared_buffer.size_bytes / 2 else q_tiles
    passes = 2.5 if op.backward else 1.0
    dram = op.bytes + kv_bytes * (rereads - 1) * passes
    memory_s = dram / (chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency)
    overhead = (kernels * eff.launch_overhead_s
                + rounds * ATTENTION_EXPOSED_PHASES * eff.pipeline_latency_s)
    seconds = max(compute_s, memory_s) + overhead
    energy = op_energy(chip, macs=op.matmul_flops / 2, dtype=op.dtype,
                       vector_ops=op.softmax_flops, local_bytes=dram * 4, dram_bytes=dram,
                       seconds=seconds)
    return make_estimate(compute_s=compute_s, memory_s=memory_s, overhead_s=overhead,
                         flops=op.flops, hbm_bytes=dram, energy=energy,
                         ideal_s=op.matmul_flops / (chip.peak_flops(op.dtype)
                                                    or chip.peak_flops("bf16")),
                         mapping=note)


def _attention_tiles(op: Attention, chip: ChipSpec,
                     eff: Efficiency) -> tuple[float, int, int, str]:
    """CTAs of Br query rows (prefill) or of one KV chunk per (sequence, kv head) (decode)
    loop over Bc-key blocks; the causal mask skips whole blocks. The slowest CTA sets the
    last round, the average CTA the others."""
    sms = chip.cores.count
    mu = _matrix_unit_for(chip, op.dtype)
    macs_per_cycle = mu.count * mu.macs_per_cycle[op.dtype]
    lanes = chip.cores.vector_unit.lanes
    hz = chip.clock_hz * eff.clock_fraction
    passes = 2.5 if op.backward else 1.0
    if op.q_len == 1 or op.q_len * (op.heads // op.kv_heads) <= FA_BLOCK_Q // 2:
        # decode: the q heads of a GQA group share one CTA; split the cache to fill the SMs
        rows = op.q_len * (op.heads // op.kv_heads)
        units = op.batch * op.kv_heads
        splits = max(1, min(ceil(op.kv_len / DECODE_MIN_CHUNK), ceil(2 * sms / units)))
        ctas = units * splits
        blocks = ceil(ceil(op.kv_len / splits) / FA_BLOCK_KV)
        rows_eff = max(rows, 16)  # the MMA's minimum m
        avg_blocks = max_blocks = blocks
        kernels = 2 if splits > 1 else 1  # the split-KV combine is a second kernel
        note = f"split-KV decode: {ctas} CTAs ({splits} splits)"
    else:
        rows_eff = FA_BLOCK_Q
        q_tiles = ceil(op.q_len / FA_BLOCK_Q)
        ctas = op.batch * op.heads * q_tiles
        kv_blocks = ceil(op.kv_len / FA_BLOCK_KV)
        keep = op.score_pairs / (op.q_len * op.kv_len)
        avg_blocks = max(1.0, kv_blocks * keep)
        max_blocks = kv_blocks
        kernels = 1
        note = f"FlashAttention-2: {ctas} CTAs of {FA_BLOCK_Q} query rows"
    vu = chip.cores.vector_unit
    scores = rows_eff * FA_BLOCK_KV
    # per block: two MMAs; one exp per score on the special-function units; max, subtract,
    # sum and scale per score and the rescale of the output accumulator on the fp32 lanes
    softmax_cycles = (scores / (vu.special_function_lanes or lanes)
                      + (4 * scores + rows_eff * op.head_dim) / lanes)
    block_cycles = (2 * scores * op.head_dim / macs_per_cycle + softmax_cycles) * passes
    per_sm = ceil(ctas / sms)
    cycles = ((per_sm - 1) * avg_blocks + max_blocks) * block_cycles
    return cycles / hz, ceil(ctas / sms), kernels, note


def _attention_systolic(op: Attention, chip: ChipSpec,
                        eff: Efficiency) -> tuple[float, int, int, str]:
    """QK^T and PV as batched GEMMs through the arrays' mapping search, masked pairs skipped,
    softmax on the vector units."""
    group = op.heads // op.kv_heads
    batch, m = op.batch * op.kv_heads, op.q_len * group
    keep = op.score_pairs / (op.q_len * op.kv_len)
    passes = 2.5 if op.backward else 1.0
    qk = search_matmul(chip, m, op.kv_len, op.head_dim, batch, op.dtype, op.itemsize, eff)
    pv = search_matmul(chip, m, op.head_dim, op.kv_len, batch, op.dtype, op.itemsize, eff)
    pairs = op.batch * op.heads * op.score_pairs * passes
    vector_s = (pairs / chip.special_function_rate() + 4 * pairs / chip.vector_flops()
                ) / eff.clock_fraction
    compute_s = (qk.compute_s + pv.compute_s) * keep * passes + vector_s
    return compute_s, 1, 1, f"fused attention; QK^T as {qk.mapping}"
