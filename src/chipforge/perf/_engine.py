"""``estimate(op_or_graph, chip)``: one op at a time, identical ops evaluated once."""

from __future__ import annotations

import functools
from math import ceil

from chipforge.arch import ChipSpec, load_chip
from chipforge.errors import WorkloadError
from chipforge.machine import DEFAULT, Efficiency, compiles_for
from chipforge.ops import (
    Attention,
    Collective,
    Conv2d,
    EmbeddingBag,
    Graph,
    Matmul,
    Op,
    OpKind,
)
from chipforge.perf._attention import attention_estimate
from chipforge.perf._collective import collective_estimate
from chipforge.perf._energy import op_energy
from chipforge.perf._estimate import Energy, Estimate, make_estimate
from chipforge.perf._kernel_model import compiled_kernel_time
from chipforge.perf._matmul import search_matmul, streaming_s
from chipforge.perf._moe import moe_estimate
from chipforge.workloads import (
    MAX_CHIPS,
    USABLE_MEMORY_FRACTION,
    MemoryFootprint,
    MemoryModel,
    fit_split,
    memory_model,
)

Parallel = str | int | None


def estimate(op_or_graph: Op | Graph, chip: ChipSpec | str, eff: Efficiency = DEFAULT,
             parallel: Parallel = "auto") -> Estimate:
    """Time, FLOPs, DRAM bytes, energy, utilization, bound, memory fit and throughput of an
    op or a graph.

    A graph's estimate is the sum of its ops' (each repeated by its count) and keeps the
    per-op records in ``.breakdown``. A graph from a ``chipforge.workloads`` builder carries
    a memory model (weights, KV cache, activations, gradients, optimizer state); its
    estimate checks one chip's share against ``USABLE_MEMORY_FRACTION`` of the chip's
    memory and ``parallel`` says what to do:

    - ``"auto"`` (default): estimate the graph as built if it fits; otherwise the smallest
      split that fits (fewest chips, :func:`chipforge.workloads.fit_split`). LLM prefill and
      decode are rebuilt tensor-parallel (``tp``, collectives included) and estimated per
      chip, with ``fits=True``. Other splits (training's tp x pp, DLRM tables, vision batch)
      are not modelled: the graph is estimated on one chip as if memory were unbounded,
      with ``fits=False`` and ``needs_chips`` set.
    - ``None``: estimate the graph as built; ``fits`` and ``needs_chips`` say whether it fits.
    - an int ``n``: an LLM prefill or decode rebuilt at ``tp=n`` (WorkloadError otherwise).

    Either way ``note`` states the memory per chip, the usable memory and the split. A
    single op is estimated unchanged; its ``memory_bytes`` is its operands' bytes.
    """
    spec = load_chip(chip) if isinstance(chip, str) else chip
    if not (parallel is None or parallel == "auto"
            or (isinstance(parallel, int) and not isinstance(parallel, bool) and parallel > 0)):
        raise WorkloadError(f"estimate: parallel={parallel!r}; expected 'auto', None or a "
                            "positive tensor-parallel size")
    if isinstance(op_or_graph, Graph):
        return _estimate_workload(op_or_graph, spec, eff, parallel)
    return _with_op_memory(_estimate_op(op_or_graph, spec, eff), op_or_graph, spec)


def _usable(chip: ChipSpec) -> float:
    return chip.memory.capacity_bytes * USABLE_MEMORY_FRACTION


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB"


def _capacity_text(chip: ChipSpec) -> str:
    return (f"{_gb(_usable(chip))} usable ({USABLE_MEMORY_FRACTION:.0%} of "
            f"{chip.memory.capacity_bytes / 1e9:g} GB on {chip.name})")


def _with_op_memory(est: Estimate, op: Op, chip: ChipSpec) -> Estimate:
    """One op: its operands must be resident at once."""
    fits = op.bytes <= _usable(chip)
    note = "" if fits else (f"does not fit: the operands take {_gb(op.bytes)} > "
                            f"{_capacity_text(chip)}")
    return est.with_memory(memory_bytes=op.bytes, fits=fits,
                           needs_chips=1 if fits else ceil(op.bytes / _usable(chip)),
                           note=note)


def _estimate_workload(graph: Graph, chip: ChipSpec, eff: Efficiency,
                       parallel: Parallel) -> Estimate:
    model = memory_model(graph)
    if model is None:
        return _without_memory_model(graph, chip, eff, parallel)
    own = model.footprint(*model.own_split())
    smallest = fit_split(graph, chip.memory.capacity_bytes)
    if isinstance(parallel, int):
        return _forced_split(graph, model, chip, eff, parallel, smallest)
    if parallel is None or own.fits(chip.memory.capacity_bytes):
        return _finish(estimate_graph(graph, chip, eff), graph, own, chip, smallest)
    rebuilt = model.reshard(smallest.tp, smallest.pp) if smallest is not None else None
    if rebuilt is None:
        return _finish(estimate_graph(graph, chip, eff), graph, own, chip, smallest)
    est = _finish(estimate_graph(rebuilt, chip, eff), rebuilt, smallest, chip, smallest)
    return est.with_memory(note=f"does not fit {own.split} ({_gb(own.total_bytes)}); split "
                                f"to fit: {smallest.chips} chips, " + est.note)


def _forced_split(graph: Graph, model: MemoryModel, chip: ChipSpec, eff: Efficiency,
                  tp: int, smallest: MemoryFootprint | None) -> Estimate:
    if tp not in dict(model.splits(tp)) or model.reshard(tp) is None:
        raise WorkloadError(f"estimate: parallel={tp} for {graph.name!r}; expected 'auto' or "
                            "None, or for an LLM prefill or decode a tensor-parallel size "
                            "that divides its attention heads (and its KV heads, when fewer)")
    rebuilt = graph if (tp, 1) == model.own_split() else model.reshard(tp)
    return _finish(estimate_graph(rebuilt, chip, eff), rebuilt, model.footprint(tp), chip,
                   smallest)


def _finish(est: Estimate, graph: Graph, mem: MemoryFootprint, chip: ChipSpec,
            smallest: MemoryFootprint | None) -> Estimate:
    """The graph total with its memory, fit and throughput fields, and a note saying so."""
    fits = mem.fits(chip.memory.capacity_bytes)
    needs = smallest.chips if smallest is not None else 0
    held = f"{_gb(mem.total_bytes)} per chip on {mem.split} ({mem.basis})"
    if fits:
        note = f"{held} within {_capacity_text(chip)}"
    elif smallest is not None:
        note = (f"does not fit: needs >= {needs} chips ({smallest.split}: "
                f"{_gb(smallest.total_bytes)} per chip); {held} > {_capacity_text(chip)}; "
                f"the time is {mem.split}'s as if its memory were unbounded")
    else:
        note = (f"does not fit: needs more than {MAX_CHIPS} chips; {held} > "
                f"{_capacity_text(chip)}; the time is {mem.split}'s as if its memory were "
                "unbounded")
    return est.with_memory(memory_bytes=mem.total_bytes, fits=fits, tp=mem.tp, pp=mem.pp,
                           needs_chips=needs, items=graph.items, item_unit=graph.item_unit,
                           note=note, memory=mem)


def _without_memory_model(graph: Graph, chip: ChipSpec, eff: Efficiency,
                          parallel: Parallel) -> Estimate:
    """A graph built by hand or captured from PyTorch: only a lower bound is known, the
    largest op's operands."""
    if isinstance(parallel, int) and parallel != 1:
        raise WorkloadError(f"estimate: parallel={parallel} for {graph.name!r}, which "
                            "carries no memory model; expected 'auto' or None")
    est = estimate_graph(graph, chip, eff)
    need = max((op.bytes for op, _ in graph.nodes), default=0.0)
    fits = need <= _usable(chip)
    what = (f"at least {_gb(need)} (the largest op's operands; the graph carries no "
            "memory model)")
    note = (f"{what} within {_capacity_text(chip)}" if fits
            else f"does not fit: {what} > {_capacity_text(chip)}")
    return est.with_memory(memory_bytes=need, fits=fits,
                           needs_chips=1 if fits else ceil(need / _usable(chip)),
                           items=graph.items, item_unit=graph.item_unit, note=note)


def estimate_graph(graph: Graph, chip: ChipSpec, eff: Efficiency = DEFAULT) -> Estimate:
    parts = tuple(_named(_estimate_op(op, chip, eff), op).scaled(count)
                  for op, count in graph.nodes)
    if not parts:
        return Estimate(0.0, 0.0, 0.0, Energy(), 0.0, (0.0,) * 4, graph.name)
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return Estimate(total.seconds, total.flops, total.hbm_bytes, total.energy, total.ideal_s,
                    total.bound_s, graph.name, 1, "", parts)


def _named(est: Estimate, op: Op) -> Estimate:
    label = op.name or op.kind.value
    return Estimate(est.seconds, est.flops, est.hbm_bytes, est.energy, est.ideal_s,
                    est.bound_s, label, 1, est.mapping)


@functools.lru_cache(maxsize=65536)
def _estimate_op(op: Op, chip: ChipSpec, eff: Efficiency) -> Estimate:
    # ops and specs are frozen and hashable, so identical ops are evaluated once per chip
    if compiles_for(chip):
        est = _compiled(op, chip, eff)
        if est is not None:
            return est
    if isinstance(op, Matmul):
        return _matmul(op, chip, eff)
    if isinstance(op, Conv2d):
        return _matmul(op.as_matmul(), chip, eff, flops=op.flops, min_bytes=op.bytes)
    if isinstance(op, Attention):
        return attention_estimate(op, chip, eff)
    if isinstance(op, EmbeddingBag):
        return _embedding_bag(op, chip, eff)
    if isinstance(op, Collective):
        return collective_estimate(op, chip, eff)
    if op.kind is OpKind.MOE:
        return moe_estimate(op, chip, eff)
    return _vector(op, chip, eff)


def _compiled(op: Op, chip: ChipSpec, eff: Efficiency) -> Estimate | None:
    """Our own chips: the kernel the chipforge compiler emits, timed by the kernel model
    (agrees with the simulator within a few percent, docs/validation.md)."""
    found = compiled_kernel_time(op, chip, eff)
    if found is None:
        return None
    kt, dram = found
    hz = chip.clock_hz * eff.clock_fraction
    seconds = kt.cycles / hz
    matrix = isinstance(op, (Matmul, Conv2d))
    macs = op.flops / 2 if matrix else 0.0
    energy = op_energy(chip, macs=macs, dtype=op.dtype, vector_ops=0.0 if matrix
                       else op.flops, local_bytes=2 * dram, dram_bytes=dram,
                       seconds=seconds)
    ideal = _ideal_matrix_s(chip, op.flops, op.dtype) if matrix else \
        op.flops / chip.vector_flops()
    busy = max(kt.compute_cycles, kt.dma_cycles)
    # seconds = busy + the rest (fills, latencies, barrier): exactly the kernel's cycles
    return make_estimate(compute_s=kt.compute_cycles / hz, memory_s=kt.dma_cycles / hz,
                         overhead_s=max(0.0, kt.cycles - busy) / hz, flops=op.flops,
                         hbm_bytes=dram, energy=energy, ideal_s=ideal,
                         mapping="compiled kernel")


def _ideal_matrix_s(chip: ChipSpec, flops: float, dtype: str) -> float:
    peak = chip.peak_flops(dtype) or chip.peak_flops("bf16")
    return flops / peak


def _matmul(op: Matmul, chip: ChipSpec, eff: Efficiency, flops: float | None = None,
            min_bytes: float | None = None) -> Estimate:
    cost = search_matmul(chip, op.m, op.n, op.k, op.batch, op.dtype, op.itemsize, eff,
                         out_itemsize=op.out_itemsize)
    dram = max(cost.dram_bytes, min_bytes or 0.0)
    memory_s = streaming_s(chip, eff, dram, cost.shared_bytes)
    flops = op.flops if flops is None else flops
    # the phases' combined time is charged to the larger (the bound it names)
    busy = cost.busy_s(chip, eff, dram)
    compute_s, memory_s = ((busy, memory_s) if cost.compute_s >= memory_s
                           else (cost.compute_s, busy))
    seconds = busy + cost.latency_s + eff.launch_overhead_s
    energy = op_energy(chip, macs=cost.macs, dtype=op.dtype, local_bytes=cost.local_bytes,
                       shared_bytes=cost.shared_bytes, dram_bytes=dram, seconds=seconds)
    return make_estimate(compute_s=compute_s, memory_s=memory_s,
                         overhead_s=cost.latency_s + eff.launch_overhead_s, flops=flops,
                         hbm_bytes=dram, energy=energy,
                         ideal_s=_ideal_matrix_s(chip, flops, op.dtype), mapping=cost.mapping)


def _vector(op: Op, chip: ChipSpec, eff: Efficiency) -> Estimate:
    """Elementwise, reduction and normalization ops: stream through the vector units.

    Data that fits in half the shared buffer is assumed resident there (the producer just
    wrote it); larger tensors stream from DRAM."""
    nbytes = op.bytes
    vector_s = op.flops / (chip.vector_flops() * eff.clock_fraction)
    dram = 0.0 if nbytes <= chip.shared_buffer.size_bytes / 2 else nbytes
    memory_s = streaming_s(chip, eff, dram, nbytes - dram)
    rows = getattr(op, "rows", None)
    if rows is not None and rows < chip.cores.count:
        # one row per core: the cores that get a row set the pace
        per_core_bw = chip.cores.local_sram.bytes_per_cycle * chip.clock_hz
        memory_s = max(memory_s, nbytes / rows / per_core_bw)
    seconds = max(vector_s, memory_s) + eff.launch_overhead_s
    energy = op_energy(chip, vector_ops=op.flops, local_bytes=nbytes,
                       shared_bytes=nbytes if dram == 0 else 0.0, dram_bytes=dram,
                       seconds=seconds)
    return make_estimate(compute_s=vector_s, memory_s=memory_s,
                         overhead_s=eff.launch_overhead_s, flops=op.flops, hbm_bytes=dram,
                         energy=energy, ideal_s=op.flops / chip.vector_flops(),
                         mapping="vector units, streaming")


def _embedding_bag(op: EmbeddingBag, chip: ChipSpec, eff: Efficiency) -> Estimate:
    """Row gathers from tables in DRAM: each row is a separate burst of ``dim`` elements."""
    row_bytes = op.dim * op.itemsize
    # assumption: DRAM moves data in 64-byte bursts; a row shorter than that wastes the rest
    burst = 64
    dram = op.tables * op.batch * op.pooling * ceil(row_bytes / burst) * burst
    dram += op.tables * op.batch * row_bytes  # pooled output
    memory_s = dram / (chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency)
    vector_s = op.flops / (chip.vector_flops() * eff.clock_fraction)
    seconds = max(memory_s, vector_s) + eff.launch_overhead_s
    energy = op_energy(chip, vector_ops=op.flops, dram_bytes=dram, local_bytes=dram,
                       seconds=seconds)
    return make_estimate(compute_s=vector_s, memory_s=memory_s,
                         overhead_s=eff.launch_overhead_s, flops=op.flops, hbm_bytes=dram,
                         energy=energy, ideal_s=op.flops / chip.vector_flops(),
                         mapping="row gather from DRAM")
