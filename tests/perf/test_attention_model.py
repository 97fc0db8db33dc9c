"""The GPU attention model against facts derived by hand (the KV bytes an fp8 cache and a
masked-MHA decode move, TRT-LLM's decode-kernel choice, what a measured call runs). The
held-out error on the measured A100 and H100 tables is tests/perf/test_held_out.py's.

``python tests/perf/test_attention_model.py`` prints the held-out errors of every row by
chip, table, cache dtype, group-size class and size bucket.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

import pytest

from chipforge.arch import load_chip
from chipforge.machine import DEFAULT
from chipforge.ops import Attention, attention
from chipforge.perf import estimate
from chipforge.perf._attention import (
    XQA_MAX_GROUP,
    _block_cycles,
    _decode,
    _prefill,
    decode_kernel,
    warp_specialized,
    xqa_gmma_q_passes,
    xqa_gmma_rope_in_kernel,
    xqa_head_elems,
    xqa_splits,
    xqa_supports,
)
from chipforge.perf._harness import harness
from chipforge.perf._matmul import streaming_s
from chipforge.perf._measured_attention import context_call, generation_call
from chipforge.perf.validation import read_table, validation_dir

A100, H100 = load_chip("a100-sxm"), load_chip("h100-sxm")
CHIPS = {"a100": (A100, "trtllm-1.0.0"), "h100": (H100, "trtllm-1.3")}
CALLS = {"context_attention": lambda row, chip: context_call(row),
         "generation_attention": generation_call}
# every n-th held-out (odd) row: ~600 A100 and ~1,100-1,400 H100 rows per table
STRIDES = {"a100": 4, "h100": 20}


def _decode_s(op: Attention, chip) -> float:
    """A decode kernel's time less its launch: its busy time (the longer of its MMAs and
    its streaming) plus the latency it exposes beyond that."""
    k = _decode(op, chip, DEFAULT)
    return max(k.compute_s, streaming_s(chip, DEFAULT, k.dram_bytes, k.l2_bytes)) + k.latency_s
def _errors(gpu: str, table: str, stride: int) -> list[tuple[dict[str, str], float]]:
    chip, harness_name = CHIPS[gpu]
    overhead = harness(harness_name).call_overhead_s
    rows = read_table(validation_dir() / gpu / f"{table}.csv")[1::2][::stride]
    out = []
    for r in rows:
        measured = float(r["latency_ms"]) / 1e3
        predicted = estimate(CALLS[table](r, chip), chip, DEFAULT, parallel=None).seconds + overhead
        out.append((r, (predicted - measured) / measured))
    return out


def _hbm(op: Attention) -> float:
    return estimate(op, H100, DEFAULT).hbm_bytes


def test_fp8_cache_decode_moves_half_the_kv_bytes():
    # GQA group 4 (XQA): K and V of 8 kv heads x 4096 tokens x 128 dims, read once, plus
    # q and the output (bf16): 2 x 16 x 1 x 32 x 128 x 2 bytes
    bf16 = attention(16, 1, 4096, 32, 8, 128)
    fp8 = attention(16, 1, 4096, 32, 8, 128, kv_dtype="fp8_e4m3")
    q_o = 2 * 16 * 32 * 128 * 2
    kv_bf16 = 2 * 16 * 4096 * 8 * 128 * 2
    assert _hbm(bf16) == q_o + kv_bf16
    assert _hbm(fp8) == q_o + kv_bf16 / 2


def test_large_group_decode_reads_kv_per_query_head():
    # 64 q heads on 1 kv head (group 64 > XQA's 32): masked MHA, one CTA per q head, so the
    # kv head's K/V is read 64 times; 64 sequences x 32768 tokens: far beyond L2 at once
    op = attention(64, 1, 32768, 64, 1, 128)
    kv = 2 * 64 * 32768 * 1 * 128 * 2
    q_o = 2 * 64 * 64 * 128 * 2
    assert decode_kernel(op, H100) == "mmha"
    assert _hbm(op) == q_o + 64 * kv
    # the same cache under group 32 (XQA) is read once
    xqa = attention(64, 1, 32768, 32, 1, 128)
    assert decode_kernel(xqa, H100) == "xqa"
    assert _hbm(xqa) == 2 * 64 * 32 * 128 * 2 + kv


def test_large_group_decode_small_cache_rereads_from_l2():
    # one sequence of 256 tokens: its K/V (128 KiB) stays in L2, DRAM sees it once
    op = attention(1, 1, 256, 64, 1, 128)
    assert _hbm(op) == 2 * 64 * 128 * 2 + 2 * 256 * 128 * 2


def test_decode_kernel_follows_trtllm_xqa_rules():
    assert XQA_MAX_GROUP == 32
    assert xqa_supports(attention(1, 1, 1024, 32, 1, 128))
    assert not xqa_supports(attention(1, 1, 1024, 96, 2, 128))  # group 48
    assert not xqa_supports(attention(1, 1, 1024, 8, 8, 128))  # MHA
    # a bf16 cache takes XQA only when batch x kv_heads x (history / 128) x 4 >= SMs:
    # 1 x 8 x 2 x 4 = 64 < 132 on H100 (MMHA), 64 x 8 x 2 x 4 >= 132 (XQA)
    assert decode_kernel(attention(1, 1, 256, 32, 8, 128), H100) == "mmha"
    assert decode_kernel(attention(64, 1, 256, 32, 8, 128), H100) == "xqa"
    # an fp8 cache under bf16 attention always takes XQA (MMHA does not support it)
    assert decode_kernel(attention(1, 1, 256, 32, 8, 128, kv_dtype="fp8_e4m3"), H100) == "xqa"


def test_split_decode_pays_the_in_kernel_merge_once():
    # H100 (132 SMs at 1.83 GHz x clock_fraction), bf16 cache, one XQA CTA per SM (mha.cu's
    # SharedMem: 4 warps x 2 buffers x 64 tokens of K (128-byte head parts) and of V (64
    # elements x 2 B) = 2 x 64 KiB, Q 16 x 128 x 2 B = 4 KiB, X 4 x 16 x 64 x 2 B = 8 KiB:
    # 140 KiB of 228). One sequence of 4096 tokens on 8 kv heads splits min(4096 / 128,
    # round(sqrt(8 x 32))) = 16 ways (8 x 16 CTAs are under 8 waves): 128 CTAs, one round,
    # whose whole path (7200 cycles) is exposed, then the last CTA of each sequence merges
    # the 16 partials: 2 more dependent phases (2 x 7200 / 3 cycles)
    hz = H100.clock_hz * DEFAULT.clock_fraction
    split = _decode(attention(1, 1, 4096, 32, 8, 128), H100, DEFAULT)
    assert "128 CTAs (16 splits, 1 per SM)" in split.note
    assert abs(split.latency_s - (1 + 2 / 3) * 7200 / hz) < 1e-12
    # 64 sequences x 8 kv heads of a 2-token cache: 512 unsplit CTAs, ceil(512 / 132) = 4
    # rounds and no merge; their paths (4 x 7200 cycles, 18 us) outlast the 1.6 MB of Q, O
    # and K/V and the MMAs (< 1 us), which they cover
    whole = _decode(attention(64, 1, 2, 32, 8, 128), H100, DEFAULT)
    assert "512 CTAs (1 splits, 1 per SM)" in whole.note
    assert abs(_decode_s(attention(64, 1, 2, 32, 8, 128), H100) - 4 * 7200 / hz) < 1e-12


def test_xqa_splits_follow_trtllm_multi_block_count():
    # 16 sequences x 8 kv heads, 4096 tokens: 4096 / 128 = 32 blocks, capped at
    # round(sqrt(8 x 32)) = 16; 128 x 16 / 132 = 15.5 waves > 8, so floor(16 / (15.5 / 8)) =
    # 8 splits (6000 / 16 sub-sequences leave room)
    assert xqa_splits(attention(16, 1, 4096, 32, 8, 128), H100, 16 * 8) == 8
    # 384 tokens: 3 blocks (round(sqrt(24)) = 5 does not cap them). mha_sm90.cu (fp8 cache)
    # gives each of the 3 splits at least one 64-token tile; mha.cu (bf16 cache) has only
    # ceil(384 / 256) = 2 of its 256-token CTA tiles to share
    assert xqa_splits(attention(1, 1, 384, 32, 8, 128, kv_dtype="fp8_e4m3"), H100, 8) == 3
    assert xqa_splits(attention(1, 1, 384, 32, 8, 128), H100, 8) == 2


def test_streaming_decode_exposes_one_round():
    # 2048 sequences x 1 kv head, group 8, head_dim 128, 8192-token bf16 cache on H100:
    # 2048 unsplit XQA CTAs, one per SM, ceil(2048 / 132) = 16 rounds (16 x 7200 cycles =
    # 73 us); the 2048 x 8192 x 128 x 2 x 2 B = 8.6 GB of K/V stream for ~3 ms, which covers
    # all rounds but one: the first's loads before any streaming, the last's store after
    # it. The latency beyond the streaming is one round's path.
    k = _decode(attention(2048, 1, 8192, 8, 1, 128), H100, DEFAULT)
    assert "2048 CTAs (1 splits, 1 per SM)" in k.note
    assert abs(k.latency_s - 7200 / (H100.clock_hz * DEFAULT.clock_fraction)) < 1e-12


def test_sm80_xqa_holds_one_cta_per_sm_at_every_head_size():
    # mha.cu's SharedMem at head_dim 64, bf16 cache: K 4 x 2 x 64 x 128 B (one 128-byte part)
    # + V 4 x 2 x 64 x 64 x 2 B = 128 KiB, Q 16 x 64 x 2 B + X 4 x 16 x 64 x 2 B = 10 KiB:
    # 138 KiB, one per SM on A100 (164 KiB) and H100 (228 KiB), not the 2 or 3 that
    # 2 x 256 x 64 x 2 B K/V tiles would give
    op = attention(512, 1, 2, 32, 8, 64)
    for chip in (A100, H100):
        assert "1 per SM" in _decode(op, chip, DEFAULT).note


def test_fp8_cache_conversion_on_the_conversion_pipe():
    # MHA (masked MHA), 1 sequence x 8 heads x 4096 tokens, head_dim 128, H100: 8 CTAs grow
    # to 1024 threads (1 per SM), split min(4096 / 256, ceil(132 / 8)) = 16 ways: 128 CTAs,
    # one round, 4 blocks of 64 tokens each, 128 / 132 of an SM busy. An fp8 cache converts
    # each block's 2 x 64 x 128 K/V elements at 16 conversions per clock: 1024 more cycles a
    # block than a bf16 cache
    hz = H100.clock_hz * DEFAULT.clock_fraction
    bf16 = _decode(attention(1, 1, 4096, 8, 8, 128), H100, DEFAULT)
    fp8 = _decode(attention(1, 1, 4096, 8, 8, 128, kv_dtype="fp8_e4m3"), H100, DEFAULT)
    assert "128 CTAs (16 splits, 1 per SM)" in fp8.note
    assert abs(fp8.compute_s - bf16.compute_s - 4 * 1024 * 128 / 132 / hz) < 1e-12


def test_tma_wgmma_xqa_round_is_one_phase_and_its_q_staging_passes():
    # an fp8 cache under bf16 attention: 64 sequences x 8 kv heads, 2 tokens, 512 unsplit
    # CTAs. H100 (TMA, wgmma: the mha_sm90.cu kernel): a group of 4 pads to 8 q heads; a math
    # thread holds (128 + 64) x 8 / 128 = 12 accumulators besides its 64 other registers:
    # 80 (a multiple of 8), 262144 B / (384 x 80 x 4 B) = 2 CTAs per SM (SharedMem 2 x 64 x
    # 128 (K) + 2 x 64 x 128 (V) + 2 x 8 x 64 (X) + 8 x 128 (Q) = 34,816 B fits 6 times):
    # ceil(512 / 264) = 2 rounds of one phase (7200 / 3 cycles) plus the Q staging: head_dim
    # 128 takes 32 threads a head, 2 warps stage 2 heads a pass, 2 passes of 400 cycles.
    # A100 (neither TMA nor wgmma) holds one mha.cu CTA (SharedMem 4 x 2 x 64 x 128 B of K,
    # 4 x 2 x 64 x 64 x 1 B of V, 16 x 128 x 2 B of Q, 4 x 16 x 64 x 2 B of X = 108 KiB of
    # 164): ceil(512 / 108) = 5 full rounds of 7200 cycles. Both are latency bound: the
    # rounds' paths cover the busy time
    op = attention(64, 1, 2, 32, 8, 128, kv_dtype="fp8_e4m3")
    for chip, ctas, rounds_cycles in ((H100, "2 per SM", 2 * (7200 / 3 + 2 * 400)),
                                      (A100, "1 per SM", 5 * 7200)):
        k = _decode(op, chip, DEFAULT)
        assert f"512 CTAs (1 splits, {ctas})" in k.note
        hz = chip.clock_hz * DEFAULT.clock_fraction
        assert abs(_decode_s(op, chip) - rounds_cycles / hz) < 1e-12
    # a group of 32: (128 + 64) x 32 / 128 = 48 accumulators, 112 registers, 262144 / (384 x
    # 112 x 4) = 1 CTA per SM: ceil(512 / 132) = 4 rounds, each staging 32 / 2 = 16 passes
    g32 = attention(64, 1, 2, 256, 8, 128, kv_dtype="fp8_e4m3")
    assert "512 CTAs (1 splits, 1 per SM)" in _decode(g32, H100, DEFAULT).note
    hz = H100.clock_hz * DEFAULT.clock_fraction
    assert abs(_decode_s(g32, H100) - 4 * (7200 / 3 + 16 * 400) / hz) < 1e-12
    # head_dim 64 takes 16 threads a head: 4 heads a pass, 8 passes for a group of 32
    assert xqa_gmma_q_passes(attention(1, 1, 2, 32, 1, 64)) == 8
    # a bf16 cache on H100 runs the SM80-style kernel: full rounds
    bf16 = attention(64, 1, 2, 32, 8, 128)
    assert abs(_decode_s(bf16, H100) - 4 * 7200 / (H100.clock_hz * DEFAULT.clock_fraction)) < 1e-12


def _row(**kw: str) -> dict[str, str]:
    row = {"batch_size": "2", "seq_len": "1024", "num_heads": "32",
           "num_key_value_heads": "8", "head_dim": "128", "attn_dtype": "bfloat16",
           "kv_cache_dtype": "bfloat16", "step": "0", "latency_ms": "1"}
    return row | kw


def test_context_call_runs_preprocessing_then_fmha():
    graph = context_call(_row())
    (pre, _), (fmha, _) = graph.nodes
    # RoPE + cache write over the fused QKV rows: 2 x 1024 tokens x (32 + 2 x 8) heads x 128
    assert pre.numel == 2 * 1024 * 48 * 128
    assert fmha == attention(2, 1024, 1024, 32, 8, 128, name="context fmha")
    # an fp8 cache (bf16 or fp8 attention in the row) runs the fp8 FMHA
    for attn_dtype in ("bfloat16", "fp8"):
        fp8 = context_call(_row(attn_dtype=attn_dtype, kv_cache_dtype="fp8")).nodes[1][0]
        assert (fp8.dtype, fp8.kv_dtype) == ("fp8_e4m3", "fp8_e4m3")


def test_generation_call_attends_over_seq_len_plus_step():
    # 2 sequences x 8 kv heads x 4096 / 128 x 4 >= 132: the SM80-style XQA kernel, which
    # reads q and the cache after the QKV pre-processing kernel
    graph = generation_call(_row(seq_len="1", step="4095"), H100)
    (pre, _), (op, _) = graph.nodes
    assert pre.numel == 2 * (32 + 2 * 8) * 128
    assert (op.q_len, op.kv_len, op.dtype, op.kv_dtype) == (1, 4096, "bf16", "bf16")
    # an fp8 cache under XQA on H100: the QGMMA kernel applies RoPE and appends K/V itself
    fused = generation_call(_row(seq_len="1", step="4095", kv_cache_dtype="fp8"), H100)
    assert isinstance(fused, Attention) and fused.kv_dtype == "fp8_e4m3"
    # A100 has no QGMMA kernel: its fp8-cache XQA (mha.cu) needs the pre-processing
    on_a100 = generation_call(_row(seq_len="1", step="4095", kv_cache_dtype="fp8"), A100)
    assert len(on_a100.nodes) == 2


def test_qgmma_rotates_in_kernel_only_a_rope_that_fits_the_head():
    # appliesRoPEInXqaKernel: 0 < rotary dim <= head size, a multiple of 16
    assert xqa_gmma_rope_in_kernel(attention(1, 1, 2, 8, 2, 128), 128)
    assert xqa_gmma_rope_in_kernel(attention(1, 1, 2, 8, 2, 256), 128)  # partial rotary
    assert not xqa_gmma_rope_in_kernel(attention(1, 1, 2, 8, 2, 64), 128)
    assert not xqa_gmma_rope_in_kernel(attention(1, 1, 2, 8, 2, 128), 120)
    # the collector's 128-element RoPE on a 64-element head: pre-processing, then QGMMA XQA
    row = _row(seq_len="1", step="4095", kv_cache_dtype="fp8", head_dim="64")
    (pre, _), (op, _) = generation_call(row, H100).nodes
    assert pre.numel == 2 * (32 + 2 * 8) * 64 and op.kv_dtype == "fp8_e4m3"
    assert isinstance(generation_call(row | {"head_dim": "256"}, H100), Attention)


def test_mmha_call_applies_rope_itself():
    # 1 sequence x 8 kv heads x max(1, 16 // 128) x 4 = 32 < 132 SMs: masked MHA, which reads
    # the fused QKV rows, rotates q and k and appends K/V itself: one kernel
    call = generation_call(_row(batch_size="1", seq_len="1", step="15"), H100)
    assert isinstance(call, Attention) and decode_kernel(call, H100) == "mmha"


def test_mmha_grows_its_ctas_for_small_grids():
    # group 8, 2 sequences of 2 tokens: MMHA, 2 x 64 = 128 CTAs. 4 CTAs of 256 threads fit an
    # SM's registers, but 128 < 4 x SMs, so TRT-LLM grows each CTA by min(ceil(4 x SMs /
    # 128), 4) = 4 to 1024 threads: one per SM. A100 (108 SMs): 2 rounds of MMHA_ROUND_CYCLES
    # = 8400 cycles, which cover the tiny busy time; H100 (132): 1 round, its whole path
    # exposed
    op = attention(2, 1, 2, 64, 8, 128)
    for chip in (A100, H100):
        assert "128 CTAs (1 splits, 1 per SM)" in _decode(op, chip, DEFAULT).note
    assert abs(_decode_s(op, A100) - 2 * 8400 / (A100.clock_hz * DEFAULT.clock_fraction)) < 1e-12
    h100 = _decode(op, H100, DEFAULT)
    assert abs(h100.latency_s - 8400 / (H100.clock_hz * DEFAULT.clock_fraction)) < 1e-12
    # 512 CTAs on H100: factor ceil(528 / 512) = 2, 512-thread CTAs, 2 per SM; 528 or more
    # keep 256 threads, 4 per SM
    assert "2 per SM" in _decode(attention(16, 1, 2, 32, 32, 128), H100, DEFAULT).note
    assert "4 per SM" in _decode(attention(33, 1, 2, 16, 16, 128), H100, DEFAULT).note


def test_prefill_rereads_kv_from_l2_while_the_heads_in_flight_fit():
    # MHA, 48 heads x 16384 tokens, head_dim 64: K/V 201 MB, far beyond H100's 50 MB L2.
    # 128 q tiles per head; 4 CTAs of 128 rows per SM (smem (128 x 2 + 2 x 2 x 64 x 2) x
    # 64 = 48 KiB, registers 128 x (64 + 64) x 4 = 64 KiB) -> 528 in flight span
    # ceil(528 / 128) + 1 = 6 heads of 2 x 16384 x 64 x 2 = 4 MiB: 25 MB, fits, so DRAM
    # reads Q, K, V and writes O once
    op = attention(1, 16384, 16384, 48, 48, 64)
    assert _hbm(op) == 4 * 16384 * 48 * 64 * 2
    # 65536 tokens, head_dim 128: 512 q tiles, 2 CTAs per SM (98 KiB of smem each) -> 264 in
    # flight span 2 heads of 2 x 65536 x 128 x 2 = 33.5 MB: 67 MB > 50 MB, so the q tiles
    # re-read their head's K/V from DRAM. Under the causal mask q tile i (0-based) reads
    # the 2(i + 1) 64-key blocks up to its last row: 2 x (1 + ... + 512) = 262,656 blocks,
    # 256.5 passes over the 1024 blocks, the first from DRAM anyway: 255.5 re-reads (the
    # model takes the kept fraction of the average tile, 65537 / 131072: 255.004)
    big = attention(1, 65536, 65536, 8, 8, 128)
    kv = 2 * 65536 * 8 * 128 * 2
    assert _hbm(big) == pytest.approx(4 * 65536 * 8 * 128 * 2 + kv * 255.5, rel=2e-3)
    # without the mask every q tile reads all of it: 511 re-reads
    full = attention(1, 65536, 65536, 8, 8, 128, causal=False)
    assert _hbm(full) == 4 * 65536 * 8 * 128 * 2 + kv * 511


def test_hopper_prefill_is_warp_specialized_ampere_is_not():
    # TMA + wgmma (shared-memory operands) on H100; cp.async + mma.sync on A100
    assert warp_specialized(H100, "bf16") and warp_specialized(H100, "fp8_e4m3")
    assert not warp_specialized(A100, "bf16")


def test_prefill_block_cycles_by_generation():
    op = attention(1, 4096, 4096, 32, 8, 128)
    # 128 rows x 64 keys = 8192 scores; QK^T + PV: 2 x 8192 x 128 MACs
    # H100 (4 x 512 bf16 MACs/cycle, 16 SFU lanes, 128 fp32 lanes): MMA 1024 cycles,
    # exps 512, fp32 (4 x 8192 + 128 x 128) / 128 = 384; warp-specialized: the exps and
    # the fp32 work side by side, 1024 + 512; FA2: 1024 + 512 + 384
    assert _block_cycles(op, H100, 128, True, True) == 1024 + 512
    assert _block_cycles(op, H100, 128, True) == 1024 + 512 + 384
    # A100 (4 x 256 MACs/cycle, 16 SFU lanes, 64 fp32 lanes): FA2 serial
    # 2048 + 512 + (4 x 8192 + 128 x 128) / 64
    assert _block_cycles(op, A100, 128, True) == 2048 + 512 + 768


def test_prefill_exposed_latency_per_tile():
    # 3 x 132 heads of 64 query rows, head_dim 128: 396 CTAs
    op = attention(3, 64, 64, 132, 132, 128)
    latency = DEFAULT.pipeline_latency_s
    # H100: one persistent warp-specialized CTA per SM, 3 tiles each: the first tile's
    # Q and K/V loads (2 phases) and 3 epilogues (O to shared memory, TMA store: 2 each)
    assert _prefill(op, H100, DEFAULT).latency_s == (2 + 3 * 2) * latency
    # A100: FA2 CTAs, 2 per SM by shared memory ((64 x 2 + 2 x 2 x 64 x 2) x 128 = 80 KiB
    # of 164 KiB): 396 / 216 -> 2 rounds of 3 exposed phases
    assert _prefill(op, A100, DEFAULT).latency_s == 2 * 3 * latency


def test_fp8_fmha_is_faster_than_bf16_when_compute_bound():
    bf16 = attention(8, 8192, 8192, 32, 8, 128)
    fp8 = attention(8, 8192, 8192, 32, 8, 128, dtype="fp8_e4m3", kv_dtype="fp8_e4m3")
    t_bf16, t_fp8 = estimate(bf16, H100).seconds, estimate(fp8, H100).seconds
    # the MMAs run at twice the rate; the softmax on the vector units does not speed up
    assert 0.5 * t_bf16 < t_fp8 < t_bf16


def _report() -> None:
    for gpu in CHIPS:
        for table in CALLS:
            groups: dict[str, list[float]] = defaultdict(list)
            for r, e in _errors(gpu, table, 1):
                g = int(r["num_heads"]) // int(r["num_key_value_heads"])
                measured_us = float(r["latency_ms"]) * 1e3
                size = ("<20us" if measured_us < 20 else "<200us" if measured_us < 200
                        else ">=200us")
                for key in ("all", f"kv {r['kv_cache_dtype']}", f"attn {r['attn_dtype']}",
                            "group<=32" if g <= XQA_MAX_GROUP else "group>32",
                            f"head_dim {r['head_dim']}", f"measured {size}"):
                    groups[key].append(e)
            print(f"{gpu} {table} (odd rows)")
            for key, errs in sorted(groups.items()):
                ape = sorted(abs(e) for e in errs)
                print(f"  {key:22s} n={len(errs):6d} median {100 * ape[len(ape) // 2]:5.1f}% "
                      f"p90 {100 * ape[int(0.9 * len(ape))]:6.1f}% "
                      f"signed {100 * statistics.median(errs):+6.1f}%")


if __name__ == "__main__":
    _report()


def test_xqa_pads_its_head_to_a_built_size():
    # mha.h headElems: 64, 128 or 256
    assert [xqa_head_elems(d) for d in (64, 96, 128, 192, 256)] == [64, 128, 128, 256, 256]
    # head_dim 192, group 4, fp8 cache on H100 runs as 256: q heads padded to 8, (256 + 64)
    # x 8 / 128 = 20 accumulators, 64 + 20 = 84 -> 88 registers, 262144 / (384 x 88 x 4) =
    # 1 CTA per SM (unpadded: 16 accumulators, 80 registers, 2 per SM)
    op = attention(64, 1, 2, 16, 4, 192, kv_dtype="fp8_e4m3")
    assert "(1 splits, 1 per SM)" in _decode(op, H100, DEFAULT).note
    # the cache keeps the valid 192 elements: the traffic is op's
    assert _decode(op, H100, DEFAULT).dram_bytes == op.bytes
