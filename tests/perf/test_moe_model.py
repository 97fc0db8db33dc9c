"""The fused MoE model against facts derived by hand (FLOPs, the kernel floor, the
weight-streaming bound). The held-out error on the measured H100 table is
tests/perf/test_held_out.py's."""

from __future__ import annotations

import math

import pytest

from chipforge.arch import load_chip
from chipforge.machine import DEFAULT
from chipforge.ops import moe
from chipforge.perf import estimate
from chipforge.perf._measured_moe import moe_call
from chipforge.perf._moe import KERNELS

H100 = load_chip("h100-sxm")
def test_moe_call_reads_a_row():
    row = {"moe_dtype": "fp8", "num_tokens": "48", "hidden_size": "1024",
           "inter_size": "2688", "topk": "22", "num_experts": "512", "moe_tp_size": "2",
           "moe_ep_size": "128", "distribution": "power_law_1.2", "latency_ms": "0.05"}
    assert moe_call(row) == moe(48, 1024, 2688, 22, 512, tp=2, ep=128,
                                distribution="power_law_1.2", gated=False,
                                dtype="fp8_e4m3")


def test_flops_and_kernel_floor():
    op = moe(1024, 512, 1024, 8, 64, tp=2, ep=4)
    est = estimate(op, H100, DEFAULT, parallel=None)
    assert est.flops == 2 * 1024 * 8 * 512 * 3 * 1024 / (2 * 4)
    # every kernel the call launches pays the launch cost at least once
    assert est.seconds > KERNELS * DEFAULT.launch_overhead_s


def test_decode_streams_every_active_experts_weights():
    # 64 tokens x top-8 over 64 experts, balanced: every expert is hit, so all 64 experts'
    # weights (3 x 4096 x 1024 bf16 each) cross HBM: a lower bound, and the dominant term
    op = moe(64, 4096, 2048, 8, 64, tp=2)
    weights = 64 * 3 * 4096 * 1024 * 2
    bw = H100.memory.bandwidth_bytes_per_s * DEFAULT.dram_efficiency
    est = estimate(op, H100, DEFAULT, parallel=None)
    assert est.hbm_bytes >= weights
    assert weights / bw < est.seconds < 1.5 * weights / bw + KERNELS * 5e-6


def test_ep_doubling_halves_weight_bound_time():
    # decode with every expert active: the time beyond the fixed kernels is the weight
    # stream, which halves when a rank holds half the experts
    def streaming_s(ep: int) -> float:
        est = estimate(moe(256, 4096, 2048, 8, 64, tp=1, ep=ep), H100, DEFAULT,
                       parallel=None)
        return est.seconds - KERNELS * DEFAULT.launch_overhead_s

    assert streaming_s(2) / streaming_s(4) == pytest.approx(2.0, rel=0.1)


def test_fp8_experts_are_faster_than_bf16_when_compute_bound():
    big = dict(tokens=16384, hidden=4096, inter=4096, topk=8, experts=8)
    bf16 = estimate(moe(**big), H100, DEFAULT, parallel=None).seconds
    fp8 = estimate(moe(**big, dtype="fp8_e4m3"), H100, DEFAULT, parallel=None).seconds
    assert fp8 < 0.8 * bf16


@pytest.mark.parametrize("chip", ["forge-t1", "forge-i1"])
def test_our_systolic_chips_get_an_estimate(chip):
    spec = load_chip(chip)
    op = moe(256, 1024, 1024, 4, 16, ep=2)
    est = estimate(op, spec, DEFAULT, parallel=None)
    assert math.isfinite(est.seconds) and est.seconds > 0
    assert est.flops == op.flops
    assert "one GEMM per expert" in est.mapping
    # every one of the 8 local experts is hit: 2 GEMM dispatches each plus the other passes
    assert op.active_experts == 8
    assert est.seconds > (KERNELS - 2 + 2 * 8) * DEFAULT.launch_overhead_s
    assert est.energy.core_j > 0 and est.energy.offchip_j > 0


def test_group_switches_count_experts_met_per_sm():
    from chipforge.perf._moe import _group_switches

    # 264 one-tile experts dealt round-robin over 132 SMs: each SM meets 2 experts
    assert _group_switches([128] * 264, 128, 128, 128, 132) == 2
    # one expert of 8 x 125 = 1000 tiles covers every SM once: one switch each
    assert _group_switches([1024], 16000, 128, 128, 132) == 1


def test_grouped_gemm_main_loop_is_bound_by_l2_bandwidth():
    from chipforge.perf._moe import _grouped_gpu

    # 132 experts x 256 rows, n = 256, k = 8192, bf16. The cheapest tiles for L2 are
    # 256x128 / 128x256: 264 tiles, each streaming (256 + 128) x 8192 x 2 B of operands
    # and writing 256 x 128 x 2 B: 264 x 6,356,992 B = 1.678 GB at 9.37 TB/s = 179 us,
    # above the tensor-core time (256 x 256 x 8192 MACs per SM / 2048 per clk at
    # 0.8633 x 1.83 GHz = 166 us)
    phase = _grouped_gpu(H100, DEFAULT, (256,) * 132, 256, 8192, "bf16", 2.0)
    l2_s = 264 * ((256 + 128) * 8192 * 2 + 256 * 128 * 2) / 9370e9
    assert phase.compute_s >= l2_s
    assert l2_s == pytest.approx(179e-6, rel=0.01)
