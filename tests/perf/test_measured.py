"""What a measured call runs and what its harness adds (perf._measured, perf._harness).

Oracles: the aiconfigurator collector's code (collect_gemm.py: 5 copies per CUDA graph in
TensorRT-LLM 1.0.0, min(5, ceil(L2 / weight bytes)) in 1.3.0rc20; an fp8 Linear without a
static input scale quantizes its activation dynamically inside the timed call) and
hand-derived byte counts.
"""

from __future__ import annotations

import pytest

from chipforge.arch import load_chip
from chipforge.errors import ChipforgeError
from chipforge.ops import Graph, Matmul
from chipforge.perf import DEFAULT, HARNESSES, estimate, harness
from chipforge.perf._measured import (
    Sample,
    gemm_call,
    gemm_copies,
    gemm_sample,
    table_dtype,
)

H100 = load_chip("h100-sxm")


def test_a_bf16_linear_is_one_gemm():
    assert gemm_call(64, 128, 256, "bf16") == Matmul(m=64, n=128, k=256, dtype="bf16")


def test_an_fp8_linear_quantizes_its_activation_first():
    call = gemm_call(64, 128, 256, "fp8_e4m3")
    assert isinstance(call, Graph)
    names = [op.name for op, _ in call.nodes]
    assert names == ["amax memset", "amax", "quantize", "scale cast", "fp8 gemm"]
    ops = {op.name: op for op, _ in call.nodes}
    # the quantize pass reads the bf16 activation (2 B) and writes e4m3 (1 B) per element
    assert ops["quantize"].bytes == 64 * 256 * 3
    # the amax reads every activation element once, in bf16
    assert ops["amax"].bytes >= 64 * 256 * 2
    # cuBLASLt writes the bf16 output: C at 2 bytes an element
    assert ops["fp8 gemm"] == Matmul(m=64, n=128, k=256, dtype="fp8_e4m3", out_dtype="bf16",
                                     name="fp8 gemm")


def test_gemm_copies_per_graph_follow_the_collector():
    l2 = 50e6
    assert gemm_copies("trtllm-1.0.0", 65536, 65536, 2, l2) == 5  # always 5
    assert gemm_copies("trtllm-1.3", 32, 32, 2, l2) == 5  # capped at 5
    assert gemm_copies("trtllm-1.3", 4096, 4096, 2, l2) == 2  # ceil(50e6 / 33.5e6)
    assert gemm_copies("trtllm-1.3", 8192, 8192, 1, l2) == 1  # 67 MB > L2
    assert gemm_copies("trtllm-1.3", 8192, 8192, 2, l2) == 1


def test_a_prediction_is_the_kernels_plus_the_harness_share():
    sample = gemm_sample(128, 128, 128, "bf16", 1e-5, "trtllm-1.0.0", H100)
    kernels = estimate(Matmul(m=128, n=128, k=128), H100).seconds
    share = HARNESSES["trtllm-1.0.0"].call_overhead_s / 5
    assert sample.predicted_s(H100, DEFAULT) == pytest.approx(kernels + share)
    # an explicit overhead (what a fit tries) replaces the shipped one
    assert sample.predicted_s(H100, DEFAULT, {"trtllm-1.0.0": 5e-6}) == pytest.approx(
        kernels + 1e-6)


def test_an_estimate_never_includes_a_harness():
    plain = Sample(Matmul(m=128, n=128, k=128), 1e-5)
    assert plain.overhead_s() == 0.0
    assert HARNESSES["none"].call_overhead_s == 0.0


def test_an_unknown_harness_is_one_clear_error():
    with pytest.raises(ChipforgeError, match=r"unknown measurement harness 'trtllm-9'; "
                                             r"expected one of none, trtllm-1.0.0"):
        harness("trtllm-9")


@pytest.mark.parametrize(("name", "dtype"), [("bfloat16", "bf16"), ("fp8", "fp8_e4m3"),
                                             ("half", "fp16"), (" BF16 ", "bf16")])
def test_table_dtypes(name, dtype):
    assert table_dtype(name) == dtype
