"""What differs between GPU generations in the GEMM model, from the chip spec alone.

Ampere-style tensor cores (``mma_operands: warp_registers``) read a CTA tile's operands
from shared memory once per warp; chips without a tile copy engine
(``async_bulk_copy: false``) store a CTA's outputs after its main loop. Oracles: hand
derivations from the spec and a published A100 measurement.
"""

from __future__ import annotations

from dataclasses import replace
from math import ceil

import pytest

from chipforge.arch import load_chip
from chipforge.machine import DEFAULT, DRAM_LATENCY_S
from chipforge.ops import Attention, matmul
from chipforge.perf import estimate
from chipforge.perf import validation as v
from chipforge.perf._attention import decode_kernel
from chipforge.perf._matmul import (
    GPU_TK,
    gpu_k_slice,
    gpu_overlap_norm,
    gpu_step_cycles,
    overlapped_s,
    search_matmul,
    shared_buffer_read_bytes_per_s,
    smem_step_bytes,
)


def test_a_warp_level_mma_reads_each_operand_once_per_warp():
    """64 x 64 bf16 tile, 32x32 warps: written once (128 rows x 32 x 2 B = 8 KiB) and read
    2 x 64 x 64 x 32 x 2 / 32 = 16 KiB by the four warps; a wgmma reads it once."""
    a100, h100 = load_chip("a100-sxm"), load_chip("h100-sxm")
    assert smem_step_bytes(a100.cores.matrix_units[0], 64, 64, 32, 2) == 8192 + 16384
    assert smem_step_bytes(h100.cores.matrix_units[0], 64, 64, 32, 2) == 8192
    # 256 x 128 on 8 warps of 64 x 64: (384 x 32 x 2) + 256 x 128 x 32 x 2 x (2 / 64)
    assert smem_step_bytes(a100.cores.matrix_units[0], 256, 128, 32, 2) == (
        384 * GPU_TK * 2 + 256 * 128 * GPU_TK * 2 * 2 / 64)


def test_without_a_copy_engine_the_output_stores_follow_the_main_loop():
    """The same A100 with a copy engine differs by exactly the output's bytes at the
    DRAM rate on an output-heavy GEMM (k = 128: C is 32x the operands)."""
    a100 = load_chip("a100-sxm")
    engine = a100.model_copy(update={"cores": a100.cores.model_copy(
        update={"async_bulk_copy": True})})
    m, n, k = 8192, 12288, 128
    serial = search_matmul(a100, m, n, k, 1, "bf16", 2, DEFAULT)
    overlapped = search_matmul(engine, m, n, k, 1, "bf16", 2, DEFAULT)
    store_s = m * n * 2 / (a100.memory.bandwidth_bytes_per_s * DEFAULT.dram_efficiency)
    assert serial.time_s(a100, DEFAULT) > overlapped.time_s(engine, DEFAULT)
    # the serial mapping's compute phase carries the whole store
    assert serial.compute_s >= store_s


def test_an_output_heavy_a100_gemm_runs_at_the_measured_rate():
    """Published (aiconfigurator, TRT-LLM 1.0.0, A100): m=8192 n=12288 k=128 takes 256.6 us;
    the output-store serialisation explains it (it modelled 154 us, -40%, overlapped)."""
    chip = load_chip("a100-sxm")
    sample = next(s for s in v.TABLES["gemm_bf16"].samples(v.validation_dir())
                  if (s.op.m, s.op.n, s.op.k) == (8192, 12288, 128))
    assert sample.measured_s == pytest.approx(256.6e-6, abs=0.1e-6)
    assert sample.predicted_s(chip, DEFAULT) == pytest.approx(sample.measured_s, rel=0.12)


def test_a_stage_holds_64_bytes_of_a_row_with_cp_async_and_128_with_tma():
    """CUTLASS sm80 16-bit tiles are K = 32; sm90's 128-byte swizzle is K = 64 (16-bit)
    and K = 128 (fp8)."""
    a100, h100 = load_chip("a100-sxm"), load_chip("h100-sxm")
    assert gpu_k_slice(a100, 2) == 32
    assert (gpu_k_slice(h100, 2), gpu_k_slice(h100, 1)) == (64, 128)


def test_a_small_tile_s_k_loop_is_bound_by_its_pipeline_latency():
    """A100, 64 x 64 bf16 tile at a 1 GHz sustained clock: the MMA takes 64 x 64 x 32 /
    1024 = 128 cycles and shared memory 192 (8 KiB written, 16 KiB read by 32 x 32 warps,
    at 128 B a cycle); each of the 3 stages is held for a 400-cycle DRAM latency plus its
    192 busy cycles, so one slice starts per (400 + 192) / 3 = 197.3 cycles; a 128 x 128
    tile's 512 MMA cycles are not bound ((400 + 512) / 3 = 304)."""
    a100 = load_chip("a100-sxm")
    mu = a100.cores.matrix_units[0]
    macs = mu.count * mu.macs_per_cycle["bf16"]
    assert gpu_step_cycles(a100, mu, 64, 64, 2, macs, 1e9) == pytest.approx(
        (DRAM_LATENCY_S * 1e9 + 192) / 3)
    assert (DRAM_LATENCY_S * 1e9 + 192) / 3 == pytest.approx(197.33, abs=0.01)
    assert gpu_step_cycles(a100, mu, 128, 128, 2, macs, 1e9) == 128 * 128 * 32 / macs


def test_cp_async_gemm_overlaps_loads_and_mmas_imperfectly():
    """Hand-derived: an L_3 norm of equal phases is 2^(1/3) of either; one phase twice the
    other gives 2 x (1 + 1/8)^(1/3); TMA GPUs (and any zero phase) give the plain max."""
    a100, h100 = load_chip("a100-sxm"), load_chip("h100-sxm")
    assert gpu_overlap_norm(a100) == 3.0
    assert gpu_overlap_norm(h100) == float("inf")
    assert overlapped_s(1.0, 1.0, 3.0) == pytest.approx(2 ** (1 / 3))
    assert overlapped_s(1.0, 2.0, 3.0) == pytest.approx(2 * (9 / 8) ** (1 / 3))
    assert overlapped_s(3.0, 0.0, 3.0) == 3.0
    assert overlapped_s(1.0, 2.0, float("inf")) == 2.0
    # the engine charges it: an A100 GEMM near its ridge point takes the norm of its
    # compute and DRAM phases; its L2 reads only cap the result (at the SMs' read rate)
    op = matmul(128, 8192, 8192, "bf16")
    cost = search_matmul(a100, 128, 8192, 8192, 1, "bf16", 2, DEFAULT)
    dram_s = cost.dram_bytes / (a100.memory.bandwidth_bytes_per_s * DEFAULT.dram_efficiency)
    l2_s = cost.shared_bytes / (108 * 35.7 * 1.41e9 * DEFAULT.clock_fraction)
    busy = max(overlapped_s(cost.compute_s, dram_s, 3.0), l2_s)
    expected = busy + cost.latency_s + DEFAULT.launch_overhead_s
    assert estimate(op, a100).seconds == pytest.approx(expected)
    assert busy > max(cost.compute_s, dram_s, l2_s)


def test_the_sms_read_l2_at_their_measured_per_sm_rate():
    """Hand-derived from the spec: every SM at its per-SM L2 read rate (gpu-benches'
    all-SM L2 re-read plateaus: A100 5,436 GB/s on 108 SMs at 1.41 GHz, H100 PCIe 6,947
    GB/s on 114 SMs at 1.755 GHz) at the sustained clock, under the aggregate width; a
    chip with no per-core rate (B200) gets its aggregate bandwidth."""
    a100, h100, h20 = load_chip("a100-sxm"), load_chip("h100-sxm"), load_chip("h20")
    cf = DEFAULT.clock_fraction
    assert shared_buffer_read_bytes_per_s(a100, DEFAULT) == pytest.approx(
        108 * 35.7 * 1.41e9 * cf)
    assert shared_buffer_read_bytes_per_s(h100, DEFAULT) == pytest.approx(
        132 * 34.7 * 1.83e9 * cf)
    # the H20's 78 SMs read 59% of what H100's 132 do, though both have the same L2
    assert shared_buffer_read_bytes_per_s(h20, DEFAULT) == pytest.approx(
        78 * 34.7 * 1.85e9 * cf)
    b200 = load_chip("b200")
    assert b200.shared_buffer.core_read_bytes_per_cycle is None
    assert shared_buffer_read_bytes_per_s(b200, DEFAULT) == (
        b200.shared_buffer.bandwidth_bytes_per_s)
    # at the boost clock the rate gives back the measured plateaus
    boost = replace(DEFAULT, clock_fraction=1.0)
    assert shared_buffer_read_bytes_per_s(a100, boost) == pytest.approx(5436.5e9, rel=0.005)


@pytest.mark.parametrize(("chip", "heads", "kv_heads", "kv_len"), [
    ("h100-sxm", 128, 2, 4096), ("a100-sxm", 128, 2, 4096)])
def test_large_group_masked_mha_streams_l2_at_the_per_sm_rate(chip, heads, kv_heads, kv_len):
    """Published (aiconfigurator generation_attention.csv): a 64-query-head group served by
    masked MHA re-reads its kv head's cache once per query head from L2. At batch 32 and a
    4,096-token cache the measured calls stream 6.8 TB/s (H100) and 4.1 TB/s (A100) of
    re-reads; the per-SM rate puts the model within 12% of both, where the aggregate L2
    widths (9.37 and 7.2 TB/s) made them 26% and 42% fast."""
    spec = load_chip(chip)
    row = next(s for s in v.TABLES[_GENERATION[chip]].samples(v.validation_dir())
               if isinstance(s.op, Attention) and (s.op.batch, s.op.heads, s.op.kv_heads,
                                                  s.op.head_dim, s.op.kv_len, s.op.kv_dtype)
               == (32, heads, kv_heads, 128, kv_len, "bf16"))
    assert decode_kernel(row.op, spec) == "mmha"
    assert row.predicted_s(spec, DEFAULT) == pytest.approx(row.measured_s, rel=0.12)
    wide = spec.model_copy(update={"shared_buffer": spec.shared_buffer.model_copy(
        update={"core_read_bytes_per_cycle": None})})
    assert row.predicted_s(wide, DEFAULT) < 0.8 * row.measured_s


_GENERATION = {"h100-sxm": "h100_generation_attention", "a100-sxm": "generation_attention"}


def test_tma_clusters_multicast_one_operand_to_two_ctas():
    """Hand-derived: a 2x1 cluster reads B once for two m tiles, so a square bf16 GEMM's
    L2 traffic on H100 is A x tiles_n + B x ceil(tiles_m / 2) + C (or the 1x2 mirror);
    A100 (no TMA) reads every panel per tile."""
    h100, a100 = load_chip("h100-sxm"), load_chip("a100-sxm")
    m = n = k = 8192
    a = b = c = m * k * 2
    cost = search_matmul(h100, m, n, k, 1, "bf16", 2, DEFAULT)
    assert "cluster" in cost.mapping
    tm, tn = (int(x) for x in cost.mapping.split("tile ")[1].split("x")[:2])
    one_by_one = a * ceil(n / tn) + b * ceil(m / tm) + c
    assert cost.shared_bytes in (a * ceil(n / tn) + b * ceil(ceil(m / tm) / 2) + c,
                                 a * ceil(ceil(n / tn) / 2) + b * ceil(m / tm) + c)
    assert cost.shared_bytes < one_by_one
    assert "cluster" not in search_matmul(a100, m, n, k, 1, "bf16", 2, DEFAULT).mapping
