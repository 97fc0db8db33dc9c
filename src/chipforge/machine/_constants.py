"""Fixed figures of chipforge's own cores: the same on every chip built from the core.

The ISA's cycle costs, the simulator, the compiler and the performance engine all read
them here; nothing else restates them.
"""

# assumption: DRAM access latency seen by a DMA engine, ~400 ns (GPU microbenchmarks measure
# 400-600 ns to HBM: Jia et al., "Dissecting the NVIDIA Volta GPU Architecture via
# Microbenchmarking", 2018)
DRAM_LATENCY_S = 400e-9
# assumption: each systolic array has 2 MiB of fp32/int32 accumulators (TPU v1 had 4 MiB
# for its 256x256 array), enough for two 512x512 or four 128x1024 fp32 tiles in flight
ACCUMULATOR_WORDS = 1 << 19
ACCUMULATOR_WORD_BYTES = 4  # fp32 or int32
VECTOR_PIPELINE_CYCLES = 8  # assumption: fetch, upcast, ALU, round, write-back stages
BARRIER_CYCLES = 64  # assumption: a chip-wide barrier over the NoC, tens of cycles
DMA_ISSUE_CYCLES = 8  # assumption: descriptor decode and address generation per transfer
INDEX_BYTES = 4  # DMA_GATHER / DMA_SCATTER row indices are int32
