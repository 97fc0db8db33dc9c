"""Fused attention on GPUs (FlashAttention-2 / fmha_v2 prefill; XQA or masked-MHA decode)
and on systolic chips (QK^T and PV through the mapping search)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import ceil, floor, sqrt

from chipforge.arch import ChipSpec
from chipforge.machine import Efficiency
from chipforge.ops import Attention, dtype_bytes
from chipforge.perf._energy import op_energy
from chipforge.perf._estimate import Estimate, make_estimate
from chipforge.perf._matmul import matrix_unit as _matrix_unit_for
from chipforge.perf._matmul import search_matmul, streaming_s

# FlashAttention-2 blocking for head_dim 128 on GPUs (Dao 2023, Sec. 3.3): Br x Bc tiles
FA_BLOCK_Q, FA_BLOCK_KV = 128, 64
# K/V blocks in flight per CTA: the next block is loaded while the current one is used
# (FA2's cp.async pipeline, Dao 2023 Sec. 3.3; fmha_v2 likewise)
FA_KV_STAGES = 2
# the smallest q tile: 4 warps of one 16-row MMA each (FA2's warps split Br; Hopper's
# wgmma is m64 per warpgroup)
FA_MIN_BLOCK_Q = 64
# Hopper/Blackwell prefill runs warp-specialized FMHA kernels (TRT-LLM fmha_v2's sm90
# "tma_ws" kernels; FlashAttention-3, Shah et al. 2024, Sec. 3.1): a producer warpgroup
# loads tiles with TMA, two consumer warpgroups run the MMAs (wgmma) and the softmax, and
# the CTA persists over q tiles. setmaxnreg gives the consumers 240 registers per thread
# (FA3: 2 x 128 x 240 + 128 x 24 = 64,512 of the SM's 65,536), so one CTA fills an SM.
WS_CTAS_PER_SM = 1
# a warp-specialized tile's epilogue: O goes from registers to shared memory, then a TMA
# bulk store to DRAM: two dependent phases. The producer has already loaded the next
# tile's Q and first K/V block during this tile, so only the epilogue is exposed per tile;
# the first tile also exposes its two loads (ATTENTION_EXPOSED_PHASES less FA2's one
# direct store).
WS_EPILOGUE_PHASES = 2
# assumption: split-KV decode (FlashDecoding, Dao et al. 2023; TRT-LLM's multi-block mode)
# splits a sequence's cache into chunks of at least this many tokens so each CTA streams a
# useful burst (masked MHA; XQA follows TRT-LLM's own count, ``xqa_splits``)
DECODE_MIN_CHUNK = 256
# exposed dependent memory phases per round of prefill CTAs: load Q, load the first K/V
# block, store O. A GEMM tile exposes one prologue+epilogue (pipeline_latency_s); an
# attention CTA serializes three such phases. assumption: the count 3 is structural, but
# it was chosen among 2, 3, 4 by the error on the A100 attention tables (see
# docs/validation.md), so treat it as fitted; it is the same for every chip.
ATTENTION_EXPOSED_PHASES = 3
# the critical path of one round of decode CTAs (Q load, page-table and first K/V page
# loads, the per-page barriers between the QK^T, softmax and PV warps, the cross-warp
# reduction and the output store), in SM cycles: at short contexts the measured decode
# time grows by one such path per round of CTAs on both A100 and H100 in cycles, not in
# seconds (per CTA at one CTA per SM: A100 ~62 ns x 108 SMs, H100 ~40 ns x 132 SMs, both
# ~7,000-8,500 sustained cycles). assumption: the value is fitted, chosen among 6000, 7200
# and 8400 on the even rows of both generation tables; it equals 3 exposed phases of
# pipeline latency at the A100's sustained clock, the same for every chip.
DECODE_ROUND_CYCLES = 7200
# a masked-MHA round's critical path, in SM cycles: MMHA reads the new token's fused q, k, v
# rows itself, rotates q and k (RoPE) and appends k and v to the cache before its dot
# products (TRT-LLM attentionOp.cpp fusedQKV_masked_attention_dispatch passes the QKV buffer
# and the rotary parameters to the kernel), so its round is longer than XQA's, which reads
# pre-processed q. assumption: fitted, chosen among 7200, 8400 and 9600 on the even rows of
# both generation tables; it is the per-round slope of short-cache MMHA calls on both chips
# (H100 ~5.2 us per extra round ~ 8,200 sustained cycles, A100 ~7.0 us ~ 8,500), the same
# for every chip
MMHA_ROUND_CYCLES = 8400
# a split (multi-block) decode merges its CTAs' partial results in the same kernel: each CTA
# stores its partial output, row max and row sum, then increments a per-sequence semaphore;
# the CTA that arrives last loads every partial and writes the merged output (TRT-LLM
# cpp/kernels/xqa/mha.cu: atom.acq_rel.gpu.global.inc on semaphores[idxSeq], isLastCta;
# masked MHA's multi-block mode likewise counts finished blocks in block_counter). That adds
# two dependent global-memory phases (the atomic, the load of the partials) to the round's
# three, on the critical path of the last round only.
DECODE_MERGE_PHASES, DECODE_ROUND_PHASES = 2, 3
# TRT-LLM's Hopper XQA kernel (cpp/kernels/xqa/mha_sm90.cu, the QGMMA kernel for an fp8 cache
# under 16-bit attention) is warp-specialized around TMA and wgmma: one I/O warp issues each
# Q, page and K/V tile load as a bulk copy completing on a shared-memory barrier, and the
# math warpgroups' QK^T and PV read their operands from shared memory, so a round's first
# K/V load is not serialized behind per-thread address generation and the Q load the way the
# SM80-style kernel's (mha.cu: ldgsts by every warp) is. assumption: that leaves one of the
# round's three exposed phases, the rest of its critical path being the Q staging passes
# (XQA_GMMA_Q_PASS_CYCLES); the count 1 was chosen among 1 and 2 jointly with the pass cost
# on the even rows of the H100 generation table (its fp8-cache rows), the same for every
# chip with TMA and shared-memory MMA operands.
DECODE_GMMA_ROUND_PHASES = 1
# TRT-LLM's XQA decode kernels serve a whole GQA group in one CTA only up to this group
# size (decoderXQAImplJIT supportConfigHMMA / supportConfigQGMMA: head_grp_size x
# beam_width > 32 is refused); larger groups fall back to masked multi-head attention (one
# query head per CTA).
XQA_MAX_GROUP = 32
# the head sizes XQA's kernels are built for (cpp/kernels/xqa/mha.h headElems)
XQA_HEAD_SIZES = (64, 128, 256)
# below this many CTAs per SM a 16-bit-cache decode stays on MMHA: TRT-LLM
# decoderXQAConstants.h kMinHistoryTokensPerBlock 128 and kEnableMinBlockFactor 4
XQA_MIN_HISTORY_PER_BLOCK, XQA_MIN_BLOCK_FACTOR = 128, 4
# XQA's multi-block mode launches at most this many waves of CTAs over the SMs and this many
# sub-sequences in all (decoderXQAConstants.h kTargetWaveFactor, kXQA_MAX_NUM_SUB_SEQ)
XQA_TARGET_WAVES, XQA_MAX_SUB_SEQ = 8, 6000
# TRT-LLM's SM80-style XQA kernel (cpp/kernels/xqa/mha.cu, any cache on Ampere/Ada, the
# 16-bit cache on Hopper): a CTA of 4 x 1 x 2 warps (ctaShapeInWarps), the 4 along the
# sequence with a 64-token warp tile (warpTile.x) and a q tile of the group padded to 16
# rows (warpTile.y = roundUp(group, 16)). Its SharedMem holds per warp two 64-token K tiles
# of one head part of at most 128 bytes (nbKBuffers 2, kHeadPartBytes = min(128,
# head bytes) on SM80/SM90) and two 64-token V tiles of 64 elements (nbVBuffers 2,
# cacheVTileSeqLen 64), all in the cache's element type, the persistent Q tile and one
# 64-column score (X) tile per warp in the input element type. At ~136 KiB for a 16-bit
# cache it leaves one CTA per SM on A100 and H100 at every head size (the sm90 build's
# __launch_bounds__(256, 2) asks for two, which the shared memory does not fit).
XQA_MMA_SEQ_WARPS, XQA_MMA_WARP_TOKENS, XQA_MMA_BUFFERS = 4, 64, 2
XQA_MMA_K_PART_BYTES, XQA_MMA_V_TILE_ELEMS = 128, 64
# assumption: a masked-MHA CTA is 256 threads (TRT-LLM's MMHA launch for head sizes
# 64-256) of about 64 32-bit registers each; it stages no K/V tile in shared memory, so
# the register file bounds how many an SM holds: 256 KiB / (256 x 64 x 4 B) = 4
MMHA_CTA_REGISTER_BYTES = 256 * 64 * 4
# MMHA's largest CTA (decoderMaskedMultiheadAttentionLaunch.h mmha_launch_kernel_ex: "Max
# block size is 1024"), in 256-thread CTAs
MMHA_MAX_BLOCK_FACTOR = 1024 // 256
# TRT-LLM's Hopper XQA kernel (mha_sm90.cu) CTA: three 128-thread warpgroups (QK^T gemm,
# PV gemm, I/O), a 64-token K/V tile (gemm0CtaTileNbTokens) and a q-head tile padded to a
# multiple of 8 (ctaNbQHeads = roundUp(group, 8) with swapAB). Its SharedMem holds two K
# tiles of one 128-byte head part, two V tiles of the whole head, two score (X) tiles and
# the Q tile, all in the cache's element type. The default build (defines.h
# OPTIMIZE_FOR_LATENCY 1) declares __launch_bounds__(128 * 3) with no minimum of CTAs per
# SM, so the compiler's register count, not the launch, sets how many fit: a math thread
# holds its warpgroup's share of the PV accumulator (head x q heads) and of the QK^T tile
# (64 tokens x q heads) besides its other state. assumption: that other state is about 64
# registers, chosen among 48, 56, 64 and 72 on the even rows of the H100 generation table
# (its fp8-cache rows): 2 CTAs per SM for head_dim 128 and groups up to 8, 1 for large
# heads or groups, as their per-CTA slopes show.
XQA_GMMA_THREADS, XQA_GMMA_TILE_TOKENS, XQA_GMMA_HEAD_PAD = 3 * 128, 64, 8
XQA_GMMA_WARPGROUP_THREADS, XQA_GMMA_K_PART_BYTES = 128, 128
XQA_GMMA_BASE_REGISTERS = 64
REGISTER_BYTES, REGISTER_ALLOC_UNIT = 4, 8  # CUDA occupancy rules
# The same kernel's I/O warps stage Q before the QK^T gemm may start (USE_INPUT_KV: q is read
# from the fused QKV rows and rotated in the kernel): 2 warps (nbQLdWarps with an fp8 cache),
# min(32, headElems / 4) threads per head (thrdsPerHead), so 64 / that heads per pass, and
# each pass loads its heads, applies RoPE and stores them to shared memory before the next
# (one load per head per thread group in the loop over the group): a group of 32 at head_dim
# 128 takes 16 passes. assumption: a pass costs about one L2 round trip plus the RoPE and the
# shared store, ~400 SM cycles; fitted among 300-700 (steps of 50; 350 and 400 tie) on the
# even rows of the H100 generation table (its fp8-cache rows, groups 2-32) once head_dim 64
# rows run the pre-processing kernel (``xqa_gmma_rope_in_kernel``; at 500 before), the same
# for every chip running this kernel. assumption: where q arrives pre-rotated the passes
# still load it at the same cost; the even rows of head_dim-64 groups 16-32 sit between
# keeping the passes (+6% to +13% at one round) and dropping them (-8% to -13%).
XQA_GMMA_Q_WARPS, XQA_GMMA_Q_PASS_CYCLES = 2, 400
# type conversions (fp8 -> 16-bit -> fp32) issue at 16 results per clock per SM on compute
# capability 8.x and 9.0 (CUDA C++ Programming Guide, arithmetic instruction throughput:
# "all other type conversions"), the rate of the SFU (special_function_lanes). assumption:
# a decode kernel converting an fp8 cache spends about one such conversion per K/V element
# (MMHA's convert_from_fp8 unpacks fp8x2 pairs to 16-bit, then widens to fp32); chosen
# among 0.5, 1 and 2 on the even rows of the H100 generation table (its fp8-cache MMHA rows)
KV_CONVERTS_PER_ELEMENT = 1
# the Hopper XQA kernel's in-kernel RoPE needs a rotary dim that is a multiple of this
# (decoderXQAImplJIT kernelUtils.cpp appliesRoPEInXqaKernel: rotary_embedding_dim % 16 == 0)
ROPE_DIM_ALIGN = 16
WARP_THREADS = 32  # CUDA warp size
FP32_BYTES = 4  # the accumulators' element
# the MMA's minimum m (mma.sync m16n8k16 on SM80+): a GQA group of fewer rows pads to it
MMA_MIN_ROWS = 16


@dataclass(frozen=True)
class _Kernel:
    """One attention kernel's schedule: CTAs, how many an SM holds, the K/V blocks each
    walks and its per-block cycles; DRAM and L2 traffic; launches."""

    compute_s: float
    latency_s: float  # all rounds' exposed latencies
    dram_bytes: float
    l2_bytes: float
    kernels: int
    note: str


def attention_estimate(op: Attention, chip: ChipSpec, eff: Efficiency) -> Estimate:
    """Fused attention: scores stay on chip, QK^T and PV run on the matrix units, the online
    softmax on the vector units. GPUs: fmha_v2 / FlashAttention-2 prefill, XQA or masked-MHA
    decode (``_decode``); systolic chips: the mapping search. RoPE and the KV-cache write
    are separate ops of the workload graph."""
    mu = _matrix_unit_for(chip, op.dtype)
    if mu.kind != "tensor_core":
        return _finish(op, chip, eff, _systolic(op, chip, eff))
    if _is_decode(op):
        return _finish(op, chip, eff, _decode(op, chip, eff))
    return _finish(op, chip, eff, _prefill(op, chip, eff))


def _is_decode(op: Attention) -> bool:
    """New tokens against a cache: few query rows per kv head (a GQA group of one token or
    a short speculative run). A prefill with no cached prefix (q_len == kv_len) runs the
    context FMHA however short."""
    rows = op.q_len * (op.heads // op.kv_heads)
    return op.q_len < op.kv_len and (op.q_len == 1 or rows <= FA_BLOCK_Q // 2)


def _finish(op: Attention, chip: ChipSpec, eff: Efficiency, k: _Kernel) -> Estimate:
    memory_s = streaming_s(chip, eff, k.dram_bytes, k.l2_bytes)
    # each round of CTAs exposes its dependent latencies on top of the busy time
    overhead = k.kernels * eff.launch_overhead_s + k.latency_s
    seconds = max(k.compute_s, memory_s) + overhead
    energy = op_energy(chip, macs=op.matmul_flops / 2, dtype=op.dtype,
                       vector_ops=op.softmax_flops, local_bytes=k.dram_bytes * 4,
                       shared_bytes=k.l2_bytes, dram_bytes=k.dram_bytes, seconds=seconds)
    return make_estimate(compute_s=k.compute_s, memory_s=memory_s, overhead_s=overhead,
                         flops=op.flops, hbm_bytes=k.dram_bytes, energy=energy,
                         ideal_s=op.matmul_flops / (chip.peak_flops(op.dtype)
                                                    or chip.peak_flops("bf16")),
                         mapping=k.note)


def warp_specialized(chip: ChipSpec, dtype: str) -> bool:
    """Whether the chip's prefill runs warp-specialized FMHA kernels: TMA bulk copies
    (``cores.async_bulk_copy``) feed MMAs that read their operands from shared memory
    (wgmma / tcgen05: ``mma_operands == "shared_memory"``); Hopper and Blackwell, not
    Ampere or Ada."""
    mu = _matrix_unit_for(chip, dtype)
    return chip.cores.async_bulk_copy and mu.mma_operands == "shared_memory"


def _block_cycles(op: Attention, chip: ChipSpec, rows: int, on_tensor_cores: bool,
                  softmax_pipes_overlap: bool = False) -> float:
    """One CTA step over FA_BLOCK_KV keys for ``rows`` query rows: QK^T and PV, then the
    online softmax (one exp per score on the special-function units; max, subtract, sum
    and scale per score and the rescale of the output accumulator on the fp32 lanes). FA2
    serializes all three; ``softmax_pipes_overlap`` (warp-specialized kernels) runs the
    exps and the fp32 work side by side, the MMAs still apart from both."""
    vu = chip.cores.vector_unit
    lanes = vu.lanes
    scores = rows * FA_BLOCK_KV
    if on_tensor_cores:
        mu = _matrix_unit_for(chip, op.dtype)
        mma_cycles = 2 * scores * op.head_dim / (mu.count * mu.macs_per_cycle[op.dtype])
    else:  # masked MHA: dot products as fp32 FMAs on the vector lanes
        mma_cycles = 2 * scores * op.head_dim / lanes
    exp_cycles = scores / (vu.special_function_lanes or lanes)
    fp32_cycles = (4 * scores + rows * op.head_dim) / lanes
    # assumption: in a warp-specialized CTA the two consumer warpgroups alternate their
    # softmax phases (FA3's ping-pong named barriers), so one's exps on the special-function
    # units run beside the other's fp32 work; the MMAs do not hide the softmax in TRT-LLM's
    # kernels (full MMA/softmax overlap, and FA3's intra-warpgroup overlap, leave long H100
    # prefills 10-20% too fast, docs in the commit)
    softmax_cycles = (max(exp_cycles, fp32_cycles) if softmax_pipes_overlap
                      else exp_cycles + fp32_cycles)
    return (mma_cycles + softmax_cycles) * (2.5 if op.backward else 1.0)


def _kv_convert_cycles(op: Attention, chip: ChipSpec, kernel: str) -> float:
    """A decode CTA's conversions of one FA_BLOCK_KV-token K/V block from a cache element
    narrower than its math (an fp8 cache under 16-bit attention) on the SM's conversion
    pipe, KV_CONVERTS_PER_ELEMENT per element. The Hopper XQA kernel runs its MMAs in the
    cache's fp8 and converts only Q (mha_sm90.cu: MathElem = CacheElem)."""
    if dtype_bytes(op.kv_dtype) >= op.itemsize or xqa_gmma(op, chip, kernel):
        return 0.0
    vu = chip.cores.vector_unit
    rate = vu.special_function_lanes or vu.lanes
    return KV_CONVERTS_PER_ELEMENT * 2 * FA_BLOCK_KV * op.head_dim / rate


def _prefill(op: Attention, chip: ChipSpec, eff: Efficiency) -> _Kernel:
    """CTAs of Br query rows loop over Bc-key blocks; the causal mask skips whole blocks.
    The slowest CTA sets the last round, the average CTA the others. K/V are re-read by
    every q tile unless the L2 keeps them. FA2 (Ampere, Ada): as many CTAs per SM as
    shared memory and registers hold, each round exposing ATTENTION_EXPOSED_PHASES;
    warp-specialized (Hopper, Blackwell): one persistent CTA per SM whose producer
    prefetches the next tile, so a tile exposes only its epilogue."""
    sms = chip.cores.count
    hz = chip.clock_hz * eff.clock_fraction
    # a short sequence gets a shorter q tile, down to the 4-warp minimum
    br = min(FA_BLOCK_Q, max(FA_MIN_BLOCK_Q, ceil(op.q_len / FA_MIN_BLOCK_Q) * FA_MIN_BLOCK_Q))
    q_tiles = ceil(op.q_len / br)
    ctas = op.batch * op.heads * q_tiles
    kv_blocks = ceil(op.kv_len / FA_BLOCK_KV)
    keep = op.score_pairs / (op.q_len * op.kv_len)
    avg_blocks = max(1.0, kv_blocks * keep)
    per_sm = ceil(ctas / sms)
    ws = warp_specialized(chip, op.dtype)
    cycles = ((per_sm - 1) * avg_blocks + kv_blocks) * _block_cycles(op, chip, br, True, ws)
    # the SM holds as many CTAs as its shared memory fits their Q tile and K/V blocks
    # (FA_KV_STAGES deep) and its register file their fp32 output accumulator and score
    # tile (FA2 keeps both in registers); the resident CTAs' exposed latencies overlap
    smem_bytes = (br * op.itemsize
                  + 2 * FA_KV_STAGES * FA_BLOCK_KV * dtype_bytes(op.kv_dtype)) * op.head_dim
    reg_bytes = br * (op.head_dim + FA_BLOCK_KV) * FP32_BYTES
    regs = chip.cores.register_file_bytes or chip.cores.local_sram.size_bytes
    resident = WS_CTAS_PER_SM if ws else max(
        1, min(int(chip.cores.local_sram.size_bytes // smem_bytes), int(regs // reg_bytes)))
    rounds = ceil(ctas / (sms * resident))
    passes = 2.5 if op.backward else 1.0
    dram_rereads, l2_rereads = _kv_rereads(op, chip, q_tiles, avg_blocks / kv_blocks,
                                           sms * resident)
    dram, l2 = op.bytes + dram_rereads * passes, l2_rereads * passes
    if ws:  # the first tile's loads and every tile's epilogue
        phases = ATTENTION_EXPOSED_PHASES - 1 + rounds * WS_EPILOGUE_PHASES
        name = "warp-specialized FMHA"
    else:
        phases, name = rounds * ATTENTION_EXPOSED_PHASES, "FlashAttention-2"
    latency = phases * eff.pipeline_latency_s
    return _Kernel(cycles / hz, latency, dram, l2, 1,
                   f"{name}: {ctas} CTAs of {br} query rows, {resident} per SM")


def _kv_rereads(op: Attention, chip: ChipSpec, q_tiles: int, kept: float,
                slots: int) -> tuple[float, float]:
    """The (DRAM, L2) bytes of a prefill's K/V re-reads: every q tile reads the K/V blocks
    of its kv head that its mask keeps, the ``kept`` fraction on average (1 unmasked, about
    half under a causal mask), so the q tiles together pass over the K/V q_tiles x kept
    times, the first pass from DRAM. The grid runs a head's q tiles side by side (FA2
    puts the q tile in the grid's fastest index; assumption: fmha_v2 likewise), so the
    ``slots`` CTAs in flight span the K/V of only slots / (q_tiles x group) + 1 (sequence,
    kv head) pairs at once: while that working set fits the L2 (as decode's re-reads,
    ``_decode``; Q and O stream through once), the re-reads come from L2 and DRAM sees the
    K/V once; beyond it, from DRAM."""
    kv_bytes = op.kv_bytes
    rereads_bytes = kv_bytes * max(0.0, q_tiles * kept - 1)
    per_head = kv_bytes / (op.batch * op.kv_heads)
    ctas_per_head = q_tiles * (op.heads // op.kv_heads)
    working_set = min(kv_bytes, per_head * (ceil(slots / ctas_per_head) + 1))
    if working_set <= chip.shared_buffer.size_bytes:
        return 0.0, rereads_bytes
    return rereads_bytes, 0.0


def xqa_supports(op: Attention) -> bool:
    """TRT-LLM's XQA kernels take a GQA group of 2 to XQA_MAX_GROUP query heads per kv
    head; plain MHA (group 1) is refused "for performance reasons" (decoderXQAImplJIT
    supportConfigCommon / supportConfigHMMA / supportConfigQGMMA)."""
    return 2 <= op.heads // op.kv_heads <= XQA_MAX_GROUP


def decode_kernel(op: Attention, chip: ChipSpec) -> str:
    """TRT-LLM's decode kernel for this op on this chip: ``"xqa"`` (one CTA per (sequence,
    kv head) serves the whole GQA group: K/V read once per kv head) or ``"mmha"`` (masked
    multi-head attention: one CTA per query head, so each q head of a group reads its kv
    head's K/V again).

    XQA runs where it supports the shape (``xqa_supports``) and, for a 16-bit cache, where
    it fills the GPU: batch x kv_heads x max(1, history / XQA_MIN_HISTORY_PER_BLOCK) x
    XQA_MIN_BLOCK_FACTOR >= SMs (DecoderXQAImplJIT::mayHavePerfGain); an fp8 cache under
    16-bit attention always takes XQA, which MMHA does not support (shouldUse)."""
    if not xqa_supports(op):
        return "mmha"
    if dtype_bytes(op.kv_dtype) < op.itemsize:
        return "xqa"
    blocks = op.batch * op.kv_heads * max(1, op.kv_len // XQA_MIN_HISTORY_PER_BLOCK)
    return "xqa" if blocks * XQA_MIN_BLOCK_FACTOR >= chip.cores.count else "mmha"


def _decode(op: Attention, chip: ChipSpec, eff: Efficiency) -> _Kernel:
    """Decode attention (q_len new tokens against a cache of kv_len).

    A CTA streams its sequence's cache page by page; the SM holds as many CTAs as its shared
    memory fits (XQA) or its register file holds (MMHA); multi-block mode splits a sequence
    over CTAs until they fill those slots. XQA reads each kv head's K/V once;
    MMHA re-reads it per q head, from L2 when the chunks in flight fit there, else from
    DRAM. A cache narrower than the math is converted on the way (``_kv_convert_cycles``).
    The rounds' critical paths overlap the streaming but for one round's; a split sequence
    adds the in-kernel merge of its partials (``_decode_latency_s``)."""
    sms = chip.cores.count
    hz = chip.clock_hz * eff.clock_fraction
    group = op.heads // op.kv_heads
    kernel = decode_kernel(op, chip)
    # the CTA's work and state: XQA computes over its padded head (the cache keeps the
    # valid elements, so the traffic stays op's)
    work = replace(op, head_dim=xqa_head_elems(op.head_dim)) if kernel == "xqa" else op
    if kernel == "xqa":
        rows, units, tensor = op.q_len * group, op.batch * op.kv_heads, True
        if xqa_gmma(op, chip, kernel):
            resident = _xqa_gmma_ctas_per_sm(work, chip)
        else:
            resident = _xqa_mma_ctas_per_sm(work, chip)
    else:
        rows, units, tensor = op.q_len, op.batch * op.heads, False
        resident = _mmha_ctas_per_sm(chip, units)
    slots = sms * resident
    if kernel == "xqa":
        splits = xqa_splits(op, chip, units)
    else:
        splits = max(1, min(ceil(op.kv_len / DECODE_MIN_CHUNK), ceil(slots / units)))
    ctas = units * splits
    blocks = ceil(ceil(op.kv_len / splits) / FA_BLOCK_KV)
    rows_eff = max(rows, MMA_MIN_ROWS) if tensor else rows
    rounds = ceil(ctas / slots)
    # the CTAs an SM holds share its matrix and vector units
    busy = min(ctas, slots) / sms
    block = _block_cycles(work, chip, rows_eff, tensor) + _kv_convert_cycles(work, chip, kernel)
    cycles = rounds * blocks * block * busy
    q_o = op.bytes - op.kv_bytes
    # MMHA's q heads of one kv head run side by side (the grid's fastest index); the chunks
    # in flight at once, slots / group of them, are the working set L2 must hold to serve
    # the group's re-reads
    chunk_bytes = op.kv_bytes / (op.batch * op.kv_heads * splits)
    working_set = min(op.kv_bytes, chunk_bytes * slots / group)
    if kernel == "xqa" or group == 1:
        dram, l2 = op.bytes, 0.0
    elif working_set <= chip.shared_buffer.size_bytes:
        dram, l2 = op.bytes, op.kv_bytes * group
    else:
        dram, l2 = q_o + op.kv_bytes * group, 0.0
    busy_s = max(cycles / hz, streaming_s(chip, eff, dram, l2))
    latency = _decode_latency_s(work, chip, kernel, rounds, splits, busy_s, hz)
    return _Kernel(cycles / hz, latency, dram, l2, 1,
                   f"{kernel} decode: {ctas} CTAs ({splits} splits, {resident} per SM)")


def _decode_latency_s(op: Attention, chip: ChipSpec, kernel: str, rounds: int, splits: int,
                      busy_s: float, hz: float) -> float:
    """The latency a decode kernel exposes beyond its busy time (streaming K/V, or the
    MMAs). The rounds' critical paths (``_decode_round_cycles``) and the streaming overlap:
    SMs drift apart after the first round, so while some wait on a round's dependent
    phases others stream, and the kernel takes its rounds' critical paths or its busy time
    plus one round's path (the first round's loads before any streaming, the last's
    reduction and store after it), whichever is longer. One round exposes its whole path
    either way. A split sequence adds the in-kernel merge of its partials
    (DECODE_MERGE_PHASES)."""
    round_cycles = MMHA_ROUND_CYCLES if kernel == "mmha" else DECODE_ROUND_CYCLES
    round_s = _decode_round_cycles(op, chip, kernel) / hz
    merge_s = DECODE_MERGE_PHASES * round_cycles / DECODE_ROUND_PHASES / hz if splits > 1 else 0
    return max(rounds * round_s - busy_s, round_s) + merge_s


def _decode_round_cycles(op: Attention, chip: ChipSpec, kernel: str) -> float:
    """One round of decode CTAs' critical path, in SM cycles: DECODE_ROUND_PHASES phases of
    DECODE_ROUND_CYCLES (MMHA: MMHA_ROUND_CYCLES); the Hopper XQA kernel exposes
    DECODE_GMMA_ROUND_PHASES of them and stages its Q first (XQA_GMMA_Q_PASS_CYCLES a
    pass)."""
    if kernel == "mmha":
        return MMHA_ROUND_CYCLES
    if xqa_gmma(op, chip, kernel):
        return (DECODE_GMMA_ROUND_PHASES * DECODE_ROUND_CYCLES / DECODE_ROUND_PHASES
                + xqa_gmma_q_passes(op) * XQA_GMMA_Q_PASS_CYCLES)
    return DECODE_ROUND_CYCLES


def xqa_splits(op: Attention, chip: ChipSpec, units: int) -> int:
    """TRT-LLM's XQA multi-block count (decoderXQAImplCommon.h computeMultiBlockCount): one
    CTA per XQA_MIN_HISTORY_PER_BLOCK tokens of history, at most round(sqrt(8 x that)) "so
    the final reduction does not dominate", cut to XQA_TARGET_WAVES waves of CTAs over the
    SMs and to XQA_MAX_SUB_SEQ sub-sequences over the batch. The kernel gives a split at
    least one K/V tile: 64 tokens in mha_sm90.cu, its 4 warps' 256 in mha.cu."""
    count = op.kv_len // XQA_MIN_HISTORY_PER_BLOCK
    count = max(1, min(count, round(sqrt(8 * count))))
    waves = units * count / chip.cores.count
    if waves > XQA_TARGET_WAVES:
        count = max(1, floor(count / (waves / XQA_TARGET_WAVES)))
    count = max(1, min(count, XQA_MAX_SUB_SEQ // op.batch))
    tile = (XQA_GMMA_TILE_TOKENS if xqa_gmma(op, chip, "xqa")
            else XQA_MMA_SEQ_WARPS * XQA_MMA_WARP_TOKENS)
    return min(count, ceil(op.kv_len / tile))


def xqa_head_elems(head_dim: int) -> int:
    """The head size TRT-LLM's XQA kernels compute over: the valid head_dim padded to 64,
    128 or 256 (cpp/kernels/xqa/mha.h: headElems = validElemsPerHead <= 64 ? 64 :
    (<= 128 ? 128 : 256)); a 192-element head runs as 256."""
    return next(size for size in XQA_HEAD_SIZES if head_dim <= size) \
        if head_dim <= XQA_HEAD_SIZES[-1] else head_dim


def xqa_gmma(op: Attention, chip: ChipSpec, kernel: str) -> bool:
    """Whether an XQA decode runs the TMA + wgmma kernel (mha_sm90.cu): TRT-LLM builds it
    for an fp8 cache under 16-bit attention (supportConfigQGMMA) on a chip whose SMs have
    bulk async copies and shared-memory MMA operands (``warp_specialized``)."""
    return (kernel == "xqa" and dtype_bytes(op.kv_dtype) < op.itemsize
            and warp_specialized(chip, op.dtype))


def xqa_gmma_rope_in_kernel(op: Attention, rotary_dim: int) -> bool:
    """Whether the Hopper XQA kernel rotates q and k itself (reading the fused QKV rows) for a
    RoPE over ``rotary_dim`` head elements. TRT-LLM rotates in the kernel only a rope region
    that fits the head and is 16-byte aligned for every cache type (decoderXQAImplJIT
    kernelUtils.cpp appliesRoPEInXqaKernel: 0 < rotary_embedding_dim <= head_size, a multiple
    of ROPE_DIM_ALIGN); otherwise invokeQKVPreprocessing rotates q and appends K/V first, a
    kernel of its own, and the XQA kernel reads q from its scratch."""
    return 0 < rotary_dim <= op.head_dim and rotary_dim % ROPE_DIM_ALIGN == 0


def xqa_gmma_q_passes(op: Attention) -> int:
    """The passes in which the Hopper XQA kernel's Q warps stage a GQA group's q heads:
    min(warp size, head_dim / 4) threads per head, XQA_GMMA_Q_WARPS warps."""
    per_head = min(WARP_THREADS, ceil(op.head_dim / 4))
    return ceil(op.heads // op.kv_heads / (XQA_GMMA_Q_WARPS * WARP_THREADS // per_head))


def _xqa_mma_ctas_per_sm(op: Attention, chip: ChipSpec) -> int:
    """How many SM80-style XQA CTAs (mha.cu) an SM holds: as many as its shared memory
    fits the kernel's SharedMem (K, V, Q and X tiles)."""
    q_rows = ceil(op.heads // op.kv_heads * op.q_len / MMA_MIN_ROWS) * MMA_MIN_ROWS
    elem = dtype_bytes(op.kv_dtype)
    tiles = XQA_MMA_SEQ_WARPS * XQA_MMA_BUFFERS * XQA_MMA_WARP_TOKENS  # tokens, K or V
    smem_bytes = (tiles * min(op.head_dim * elem, XQA_MMA_K_PART_BYTES)  # K
                  + tiles * XQA_MMA_V_TILE_ELEMS * elem  # V
                  + q_rows * op.head_dim * op.itemsize  # Q
                  + XQA_MMA_SEQ_WARPS * q_rows * XQA_MMA_WARP_TOKENS * op.itemsize)  # X
    return max(1, int(chip.cores.local_sram.size_bytes // smem_bytes))


def _xqa_gmma_ctas_per_sm(op: Attention, chip: ChipSpec) -> int:
    """How many Hopper XQA CTAs (mha_sm90.cu) an SM holds: as many as its shared memory
    fits the kernel's SharedMem and its register file the 384 threads' registers
    (XQA_GMMA_BASE_REGISTERS plus the accumulators)."""
    q_heads = ceil(op.heads // op.kv_heads / XQA_GMMA_HEAD_PAD) * XQA_GMMA_HEAD_PAD
    elem = dtype_bytes(op.kv_dtype)
    head_bytes = op.head_dim * elem
    tile = XQA_GMMA_TILE_TOKENS
    smem_bytes = (2 * tile * min(head_bytes, XQA_GMMA_K_PART_BYTES)  # K, one head part
                  + 2 * tile * head_bytes + 2 * q_heads * tile * elem  # V, X
                  + q_heads * head_bytes)  # Q
    # fp32 accumulators a math thread holds: PV's head x q-head tile and QK^T's 64-token x
    # q-head tile, each over a 128-thread warpgroup
    acc = (op.head_dim + tile) * q_heads // XQA_GMMA_WARPGROUP_THREADS
    regs = ceil((XQA_GMMA_BASE_REGISTERS + acc) / REGISTER_ALLOC_UNIT) * REGISTER_ALLOC_UNIT
    reg_file = chip.cores.register_file_bytes or chip.cores.local_sram.size_bytes
    by_regs = int(reg_file // (XQA_GMMA_THREADS * regs * REGISTER_BYTES))
    by_smem = int(chip.cores.local_sram.size_bytes // smem_bytes)
    return max(1, min(by_regs, by_smem))


def _mmha_ctas_per_sm(chip: ChipSpec, ctas: int) -> int:
    """How many masked-MHA CTAs an SM holds. TRT-LLM sizes MMHA's CTA to the grid
    (mmha_launch_kernel_ex): a grid of at least 4 CTAs per SM keeps 256 threads; a smaller
    one grows its CTAs by min(ceil(SMs x fit / CTAs), fit) up to 1024 threads "to increase
    occupancy", so fewer fit on an SM (a 128-CTA grid runs 1024-thread CTAs, one per SM: two
    rounds on A100's 108 SMs, one on H100's 132)."""
    regs = chip.cores.register_file_bytes or chip.cores.local_sram.size_bytes
    fit = max(1, int(regs // MMHA_CTA_REGISTER_BYTES))
    if ctas >= chip.cores.count * fit:
        return fit
    factor = min(ceil(chip.cores.count * fit / ctas), fit, MMHA_MAX_BLOCK_FACTOR)
    return max(1, fit // factor)


def _systolic(op: Attention, chip: ChipSpec, eff: Efficiency) -> _Kernel:
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
    kv_bytes = op.kv_bytes
    q_tiles = ceil(op.q_len / FA_BLOCK_Q)
    rereads = 1 if kv_bytes <= chip.shared_buffer.size_bytes / 2 else q_tiles
    dram = op.bytes + kv_bytes * (rereads - 1) * passes
    return _Kernel(compute_s, ATTENTION_EXPOSED_PHASES * eff.pipeline_latency_s, dram, 0.0,
                   1, f"fused attention; QK^T as {qk.mapping}")
