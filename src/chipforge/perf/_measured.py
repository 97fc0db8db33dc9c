"""What one measured call runs: a published timing as a workload plus its harness.

A row of a measured table is one timed call. The call may run more than the op its row
names (an fp8 GEMM quantizes its bf16 activation first), and the harness that timed it
adds a fixed cost per call. Both are modelled here, once, for the validation tables and
for ``chipforge calibrate``: the kernels as an op or a graph the engine estimates, and the
harness as :mod:`chipforge.perf._harness` says.

What aiconfigurator's collector times (ai-dynamo/aiconfigurator, collector/trtllm/
collect_gemm.py and collector/helper.py, read at commit 095f58a): every timing is a
CUDA-graph replay timed with CUDA events, averaged over 6 replays; a GEMM graph holds
several copies of the call (different weights, the same activation), and the replay's
fixed cost is shared by them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import ceil

from chipforge.arch import ChipSpec
from chipforge.machine import Efficiency
from chipforge.ops import Graph, GraphBuilder, Op, dtype_bytes, elementwise, matmul, reduce
from chipforge.perf._engine import estimate
from chipforge.perf._harness import harness

# collect_gemm.py: TensorRT-LLM 1.0.0 always captures 5 copies of the Linear per graph;
# 1.3.0rc20 captures max(1, min(5, ceil(L2 bytes / weight bytes))) so that the copies'
# weights together overflow L2 (each call reads its weight from DRAM)
GEMM_COPIES_MAX = 5
# computeFP8QuantizeScale launches a fixed grid of 1024 blocks of 1024 threads, whatever
# the activation's size (TensorRT-LLM cpp/tensorrt_llm/kernels/quantization.cu)
AMAX_BLOCKS = 1024


# the measured tables' names for element types -> chipforge's (aiconfigurator writes
# bfloat16 / fp8 / half; nccl-tests half / int8)
TABLE_DTYPES = {"bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16", "half": "fp16",
                "float16": "fp16", "fp8": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3", "int8": "int8"}


def table_dtype(name: str) -> str:
    """chipforge's dtype for a table's name of it (unknown names pass through, for the op
    constructors to refuse with their own message)."""
    return TABLE_DTYPES.get(name.strip().lower(), name)


@dataclass(frozen=True)
class Sample:
    """One measured call: what it ran, its time, and the harness that timed it."""

    op: Op | Graph  # the kernels one call runs: one op, or a graph of them
    measured_s: float
    label: str = ""
    harness: str = "none"
    calls_per_replay: int = 1  # calls sharing one timed graph replay's fixed cost

    def overhead_s(self, overheads: Mapping[str, float] | None = None) -> float:
        """The harness's fixed cost that falls on this call (``overheads``: per-harness
        values to use instead of the fitted ones, for a fit)."""
        per_replay = (overheads[self.harness] if overheads and self.harness in overheads
                      else harness(self.harness).call_overhead_s)
        return per_replay / self.calls_per_replay

    def predicted_s(self, chip: ChipSpec, eff: Efficiency,
                    overheads: Mapping[str, float] | None = None) -> float:
        return estimate(self.op, chip, eff).seconds + self.overhead_s(overheads)


def gemm_call(m: int, n: int, k: int, dtype: str) -> Op | Graph:
    """TensorRT-LLM's Linear (no bias, bf16 activation and output) as aiconfigurator times
    it. bf16: one GEMM. fp8 (per-tensor, no static input scale): dynamic quantization of
    the activation inside the call (memset of the amax, the amax reduction, the bf16 ->
    e4m3 quantize, the scale cast to fp32), then the fp8 GEMM (cuBLASLt, bf16 out: C is
    written at 2 bytes an element)."""
    if dtype != "fp8_e4m3":
        return matmul(m, n, k, dtype)
    graph = GraphBuilder("fp8 linear (dynamic per-tensor quantization)")
    graph.add(elementwise(1, "copy", 1, 1, "fp32", name="amax memset"))
    graph.add(reduce(AMAX_BLOCKS, ceil(m * k / AMAX_BLOCKS), "max", "bf16", name="amax"))
    # bf16 in (2 bytes), e4m3 out (1 byte): two fp8-sized reads and one write per element
    graph.add(elementwise(m * k, "cast", 2, 1, "fp8_e4m3", name="quantize"))
    graph.add(elementwise(1, "cast", 1, 1, "fp32", name="scale cast"))
    graph.add(matmul(m, n, k, "fp8_e4m3", name="fp8 gemm", out_dtype="bf16"))
    return graph.build()


def gemm_copies(harness_name: str, k: int, n: int, itemsize: float,
                l2_bytes: float) -> int:
    """Copies of a GEMM call in one timed graph (collect_gemm.py)."""
    if harness_name == "trtllm-1.0.0":
        return GEMM_COPIES_MAX
    return max(1, min(GEMM_COPIES_MAX, ceil(l2_bytes / (k * n * itemsize))))


def gemm_sample(m: int, n: int, k: int, dtype: str, measured_s: float, harness_name: str,
                chip: ChipSpec) -> Sample:
    copies = gemm_copies(harness_name, k, n, dtype_bytes(dtype), chip.shared_buffer.size_bytes)
    return Sample(gemm_call(m, n, k, dtype), measured_s, dtype, harness_name, copies)
