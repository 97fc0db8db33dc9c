"""One model of chipforge's own core: its fixed figures, its cycle costs per unit, the
shared efficiency parameters, and the schedules of its compiled kernels.

Everything above reads these facts from here: the ISA's ``cycles`` dispatches onto
:class:`CoreTiming`, the simulator times programs with it, the compiler's emitters take
their chunking and sequences from the schedules, and the performance engine's kernel model
composes the same formulas. This package imports only :mod:`chipforge.arch`.
"""

from chipforge.machine._constants import (
    ACCUMULATOR_WORD_BYTES,
    ACCUMULATOR_WORDS,
    BARRIER_CYCLES,
    DMA_ISSUE_CYCLES,
    DRAM_LATENCY_S,
    INDEX_BYTES,
    VECTOR_PIPELINE_CYCLES,
)
from chipforge.machine._efficiency import DEFAULT, Efficiency
from chipforge.machine._schedules import (
    ELEMENTWISE_ROW_ELEMENTS,
    NORM_AFFINE_OPERANDS,
    POW_SEQUENCES,
    ROW_CHUNK_ROWS,
    SPECIAL_FUNCTIONS,
    VectorPasses,
    is_special,
    vector_passes,
)
from chipforge.machine._timing import CoreTiming, compiles_for

__all__ = [
    "ACCUMULATOR_WORDS", "ACCUMULATOR_WORD_BYTES", "BARRIER_CYCLES", "DEFAULT",
    "DMA_ISSUE_CYCLES", "DRAM_LATENCY_S", "ELEMENTWISE_ROW_ELEMENTS", "INDEX_BYTES",
    "NORM_AFFINE_OPERANDS", "POW_SEQUENCES", "ROW_CHUNK_ROWS", "SPECIAL_FUNCTIONS",
    "VECTOR_PIPELINE_CYCLES", "CoreTiming", "Efficiency", "VectorPasses", "compiles_for",
    "is_special", "vector_passes",
]
