"""What limits an estimate, in the report's words: compute, DRAM, the shared buffer (L2 on a
GPU, global SRAM on our chips), a core's local SRAM, the chip-to-chip link, or overhead.

The engine's ``Estimate.bound`` says "memory" for any memory phase. Its memory phase is the
slower of DRAM and shared-buffer traffic (GEMMs), or on-chip streaming when a vector op's
data stays resident, so a GEMM served from L2 is "memory" although its DRAM intensity sits
right of the roofline's ridge. The report splits that "memory" time again, op by op, with
the engine's own public cost model (``perf.search_matmul``): no number of perf's changes,
only the label.
"""

from __future__ import annotations

from chipforge.arch import ChipSpec
from chipforge.machine import DEFAULT
from chipforge.ops import Attention, Conv2d, EmbeddingBag, Graph, Matmul
from chipforge.perf import Estimate, estimate, search_matmul, shared_buffer_read_bytes_per_s

COMPUTE, DRAM, SRAM, LINK, OVERHEAD = "compute", "DRAM", "local SRAM", "link", "overhead"
UNRESOLVED = "memory (level not resolved)"  # only if the estimated graph cannot be rebuilt
# the engine's BOUNDS entries other than "memory", in the report's words
_ENGINE_WORDS = {"compute": COMPUTE, "overhead": OVERHEAD, "network": LINK}
# a memory phase within this fraction of the DRAM time is the DRAM's (float noise only)
_REL_TOL = 1e-6


def shared_label(chip: ChipSpec) -> str:
    """"L2" on a GPU, "global SRAM" on our chips: the spec's own name for the buffer."""
    return chip.shared_buffer.name


def bound_split(graph: Graph, chip: ChipSpec, est: Estimate | None = None) -> dict[str, float]:
    """Seconds of ``graph`` on ``chip`` attributed to each limiter (each op's whole time to
    its limiter, as the engine's ``bound_s`` does); the values add up to the estimate."""
    est = est if est is not None else estimate(graph, chip)
    parts = est.breakdown or (est,)
    ran = _estimated_graph(graph, est)
    ops = [op for op, _count in ran.nodes] if ran is not None else [None] * len(parts)
    split: dict[str, float] = {}
    for op, part in zip(ops, parts, strict=True):
        label = _ENGINE_WORDS.get(part.bound) or _memory_limiter(op, part, chip)
        split[label] = split.get(label, 0.0) + part.seconds
    return split


def _estimated_graph(graph: Graph, est: Estimate) -> Graph | None:
    """The graph whose ops ``est.breakdown`` records, op for op: ``graph`` itself, or the
    per-chip graph of the tensor/pipeline split the engine chose to fit memory (rebuilt
    with the workload's own memory model); None if neither matches."""
    candidates = [graph]
    split = (getattr(est, "tp", 1), getattr(est, "pp", 1))
    model = graph.meta.get("memory")
    if split != (1, 1) and hasattr(model, "reshard"):
        candidates.insert(0, model.reshard(*split))
    for cand in candidates:
        if cand is not None and len(cand.nodes) == len(est.breakdown) and all(
                part.name == (op.name or op.kind.value)
                for (op, _), part in zip(cand.nodes, est.breakdown, strict=True)):
            return cand
    return None


def limiter(graph: Graph, chip: ChipSpec, engine_bound: str,
            est: Estimate | None = None) -> str:
    """The report's label for a graph: the engine's bound, with "memory" resolved to the
    memory level that took the most memory-bound time."""
    if engine_bound != "memory":
        return _ENGINE_WORDS.get(engine_bound, engine_bound)
    split = bound_split(graph, chip, est)
    memory = {k: v for k, v in split.items() if k not in (COMPUTE, OVERHEAD, LINK)}
    return max(memory, key=memory.__getitem__) if memory else DRAM


def _memory_limiter(op, part: Estimate, chip: ChipSpec) -> str:
    """DRAM, the shared buffer or local SRAM for one memory-bound op record."""
    dram_bw = chip.memory.bandwidth_bytes_per_s * DEFAULT.dram_efficiency
    dram_s = part.hbm_bytes / part.count / dram_bw
    if op is None:
        return UNRESOLVED
    if part.mapping == "compiled kernel" or isinstance(op, (Attention, EmbeddingBag)):
        # a compiled kernel's memory phase is its DMA from DRAM; fused attention and
        # embedding gathers are timed by their DRAM traffic alone
        return DRAM
    if isinstance(op, (Matmul, Conv2d)):
        mm = op.as_matmul() if isinstance(op, Conv2d) else op
        cost = search_matmul(chip, mm.m, mm.n, mm.k, mm.batch, mm.dtype, mm.itemsize, DEFAULT)
        shared_s = cost.shared_bytes / shared_buffer_read_bytes_per_s(chip, DEFAULT)
        return shared_label(chip) if shared_s > dram_s * (1 + _REL_TOL) else DRAM
    if part.hbm_bytes == 0:
        return shared_label(chip)  # a vector op whose data stays in the shared buffer
    # a streaming vector op: DRAM unless one row per core makes the core's SRAM the pace
    memory_s = part.seconds / part.count - DEFAULT.launch_overhead_s
    return DRAM if dram_s >= memory_s * (1 - _REL_TOL) else SRAM
