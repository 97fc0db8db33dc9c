"""The shared efficiency parameters: the only fitted numbers in the performance engine.

Every chip, GPU or ours, uses the same values. Each is a physical quantity a chip has:
its sustained clock under load, its achievable DRAM bandwidth, the fixed cost of launching
a kernel, the exposed latency of a pipeline's first operand load, and the efficiency and
per-hop latency of its chip-to-chip links. They are fitted once on the measured A100 and
H100 data together (``scripts/calibrate.py``, which prints the fit), with each measuring
harness's fixed cost kept apart (``chipforge.perf.HARNESSES``); every other chip's
predictions follow from its datasheet alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Efficiency:
    # sustained clock under a dense tensor load / rated (boost) clock
    # fitted by scripts/calibrate.py on the even rows of the A100 and H100 tables together
    clock_fraction: float = 0.8633
    # achievable / peak DRAM bandwidth for streaming access
    dram_efficiency: float = 0.8316
    # fixed cost of one kernel launch (GPU) or op dispatch (accelerator), s: on a GPU it
    # includes a GEMM's first round of tiles (a GEMM too small to fill one round costs it)
    launch_overhead_s: float = 2.553e-06
    # exposed latency of one dependent phase of a fused GPU kernel (an attention CTA's Q,
    # first K/V and O phases; a grouped GEMM's first operand load and epilogue), s
    pipeline_latency_s: float = 2.494e-06
    # achievable / peak link bandwidth in collectives
    link_efficiency: float = 0.64
    # per-step latency of a ring collective (one hop: sync + transfer start), s
    link_latency_s: float = 0.99e-06


DEFAULT = Efficiency()
