"""The shared efficiency parameters: the only fitted numbers in the performance engine.

Every chip, GPU or ours, uses the same values. Each is a physical quantity a chip has:
its sustained clock under load, its achievable DRAM bandwidth, the fixed cost of launching
a kernel, the exposed latency of a pipeline's first operand load, and the efficiency and
per-hop latency of its chip-to-chip links. They are fitted once on the measured A100 data
(``scripts/calibrate.py``, which prints the fit and its residuals); the H100, H200, H20
and B200 predictions then follow from their datasheets alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Efficiency:
    # sustained clock under a dense tensor load / rated (boost) clock
    # fitted by scripts/calibrate.py on the even rows of gemm_bf16 and nccl (A100)
    clock_fraction: float = 0.8841
    # achievable / peak DRAM bandwidth for streaming access
    dram_efficiency: float = 0.7742
    # fixed cost of one kernel launch (GPU) or op dispatch (accelerator), s
    launch_overhead_s: float = 3.828e-06
    # exposed latency per round of tiles: first operand load from DRAM + epilogue, s
    pipeline_latency_s: float = 1.919e-06
    # achievable / peak link bandwidth in collectives
    link_efficiency: float = 0.5629
    # per-step latency of a ring collective (one hop: sync + transfer start), s
    link_latency_s: float = 2.237e-06


DEFAULT = Efficiency()
