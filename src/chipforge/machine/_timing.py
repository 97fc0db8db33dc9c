"""Cycle costs of one chipforge core: the single timing definition.

The ISA's ``cycles`` dispatches each instruction onto these formulas, the simulator times
programs with them, and the performance engine's kernel model composes them; none of them
restates a cost.

* DMA: a fixed issue cost plus bytes over the core's DMA bandwidth, which is the core's
  static share of the chip's achievable DRAM bandwidth, capped by its SRAM port; it
  completes a DRAM latency later.
* Matrix unit (rows R, cols C): loading weights costs R cycles (one weight row per cycle,
  a partial tile costs a full one); streaming m rows through them m + R + C - 2 (row skew,
  column drain), so one weight-stationary fold is 2R + C + m - 2 cycles, SCALE-Sim v3's
  count (:mod:`chipforge.perf.systolic`, which also subtracts SCALE-Sim's final index -1);
  an output-stationary pass over k R + C + k - 2 (SCALE-Sim's os fold), completing R
  cycles later (its outputs drain out of the array, a row per cycle, while the next
  instruction runs). A dtype whose MACs per cycle are p x R x C (fp8 packing) widens the
  array to p x C columns; p < 1 (fp32 on a bf16 array) slows every cost by 1/p (not the
  drain: it moves finished fp32/int32 words, not MACs).
* Vector: a pipeline fill plus elements over lanes (special-function lanes for
  transcendentals).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from chipforge.arch import ChipSpec
from chipforge.machine._constants import (
    BARRIER_CYCLES,
    DMA_ISSUE_CYCLES,
    DRAM_LATENCY_S,
    VECTOR_PIPELINE_CYCLES,
)
from chipforge.machine._efficiency import DEFAULT, Efficiency


def compiles_for(chip: ChipSpec) -> bool:
    """Chips whose matrix units are systolic arrays are built from chipforge's core and run
    chipforge-compiled programs."""
    return any(mu.kind == "systolic" for mu in chip.cores.matrix_units)


@dataclass(frozen=True)
class CoreTiming:
    """The per-core figures the cycle costs need, derived from a chip spec. One core is one
    systolic array with its share of the vector lanes and local SRAM; dtypes are keyed by
    name ("bf16", "int8", ...)."""

    clock_hz: float  # sustained clock under load
    cores: int  # matrix arrays on the chip: each is one ISA core with its share of SRAM
    rows: int
    cols: int
    macs_per_cycle: dict[str, int]
    lanes: int
    special_lanes: int
    dma_bytes_per_cycle: float
    dram_latency_cycles: int
    local_sram_bytes: int

    @classmethod
    def of(cls, chip: ChipSpec, eff: Efficiency = DEFAULT) -> CoreTiming:
        mu = next(m for m in chip.cores.matrix_units if m.kind == "systolic")
        vu = chip.cores.vector_unit
        arrays = chip.cores.count * mu.count
        # the chip runs at its sustained clock under load, the engine's shared parameter
        hz = chip.clock_hz * eff.clock_fraction
        share = chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency / hz / arrays
        return cls(hz, arrays, mu.rows, mu.cols,
                   dict(mu.macs_per_cycle), max(1, vu.lanes // mu.count),
                   max(1, (vu.special_function_lanes or vu.lanes) // mu.count),
                   min(float(chip.cores.local_sram.bytes_per_cycle), share),
                   round(DRAM_LATENCY_S * hz),
                   int(chip.cores.local_sram.size_bytes // max(1, mu.count)))

    # ---- the matrix unit in a dtype ----------------------------------------------------
    def pack(self, dtype: str) -> float:
        """MACs per cycle of ``dtype`` over rows x cols (2 for fp8 on forge-t1)."""
        if not isinstance(dtype, str):  # an ISA Dtype would miss every key, silently
            raise TypeError(f"CoreTiming takes dtype names ('bf16', ...), got {dtype!r}")
        return self.macs_per_cycle.get(dtype, 0) / (self.rows * self.cols)

    def array_cols(self, dtype: str) -> int:
        """Output columns of one pass in ``dtype`` (packed dtypes widen the array)."""
        p = self.pack(dtype)
        return max(1, round(self.cols * p)) if p >= 1 else self.cols

    def slowdown(self, dtype: str) -> float:
        """Cycle multiplier of a dtype the array runs below one MAC per PE per cycle."""
        p = self.pack(dtype)
        return 1.0 / p if 0 < p < 1 else 1.0

    def load_weights_cycles(self, dtype: str) -> int:
        return ceil(self.rows * self.slowdown(dtype))

    def stream_rows_cycles(self, m: float, dtype: str) -> int:
        """Weight-stationary: ``m`` rows of A through the loaded weights."""
        return ceil((m + self.rows + self.array_cols(dtype) - 2) * self.slowdown(dtype))

    def output_stationary_cycles(self, k: float, dtype: str) -> int:
        """Output-stationary: one rows x array-cols output tile over ``k``."""
        return ceil((self.rows + self.array_cols(dtype) + k - 2) * self.slowdown(dtype))

    @property
    def drain_cycles(self) -> int:
        """An output-stationary tile's drain into the accumulators, one row per cycle."""
        return self.rows

    # ---- DMA, vector, control ----------------------------------------------------------
    def dma_cycles(self, nbytes: float) -> int:
        """Cycles a transfer of ``nbytes`` occupies the DMA engine (it completes
        ``dram_latency_cycles`` later)."""
        return DMA_ISSUE_CYCLES + ceil(nbytes / self.dma_bytes_per_cycle)

    def vector_cycles(self, elements: float, special: bool = False) -> int:
        """One vector instruction over ``elements``; ``special``: on the special-function
        lanes (transcendentals)."""
        return VECTOR_PIPELINE_CYCLES + ceil(elements / (self.special_lanes if special
                                                         else self.lanes))

    barrier_cycles = BARRIER_CYCLES
