"""A whole int8 GEMM through the RTL controller, for the SCALE-Sim v3 cross-check.

C[M, N] = A[M, K] @ B[K, N] in SCALE-Sim's fold order, queued back to back:

* ``ws``: for each (k-tile, n-tile) one MM_LW of the K x N tile (k <= R, n <= C) and one
  MM_MUL streaming all M rows into the output columns, ACCUMULATE after the first k-tile;
* ``os``: for each (m-tile, n-tile) one MM_OS of the m x n block (m <= R, n <= C) over all
  of K, which overwrites its accumulators.

The RTL's GEMM cycles run from accepting the first instruction to the last accumulator
write (for ``os`` the last fold's drain, R cycles after its done). The model's are the
timing simulator's for the same instruction stream (``chipforge.sim``'s scheduler: the
sum of the ISA costs plus the last instruction's completion latency). Operand panels are
double buffered in the SRAM: fold f + 1's panel is written (by the testbench, in zero
time, as a DMA would in the background) once fold f is accepted, when nothing still
reads that buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from chipforge.isa import Dtype, Flag, Instr, Opcode
from chipforge.perf.systolic import systolic_compute_cycles
from chipforge.rtl._config import CoreConfig, payload
from chipforge.rtl._core import MatrixCore
from chipforge.rtl._formats import RtlError, banks_for
from chipforge.sim import Scheduler

I8 = Dtype.INT8


@dataclass(frozen=True)
class GemmRun:
    rows: int
    cols: int
    m: int
    n: int
    k: int
    folds: int
    rtl_cycles: int
    model_cycles: int  # the timing simulator's cycles for the same instructions
    scalesim_cycles: int  # chipforge.perf.systolic (== SCALE-Sim v3's compute cycles)
    exact: bool  # the accumulators equal A @ B (int32)
    dataflow: str = "ws"


@dataclass
class _Plan:
    cfg: CoreConfig
    instrs: list[Instr]
    buffers: list[tuple[int, np.ndarray]]  # (base word, panel image) per fold
    per_fold: int  # instructions per fold


def _ws_plan(R: int, C: int, a: np.ndarray, b: np.ndarray) -> _Plan:
    """(k-tile, n-tile) folds, k-tiles inner as in SCALE-Sim's ws mapping."""
    (m, k), n = a.shape, b.shape[1]
    panel = m * R + R * C  # A panel (m x k_len, stride R) + W tile (R x C)
    cfg = CoreConfig(R, C, "int8", sram_words=banks_for(2 * panel),
                     acc_words=banks_for(max(m * n, C)))
    instrs, buffers = [], []
    folds = [(k0, n0) for n0 in range(0, n, C) for k0 in range(0, k, R)]
    for f, (k0, n0) in enumerate(folds):
        kl, nl, base = min(R, k - k0), min(C, n - n0), (f % 2) * panel
        img = np.zeros(panel, np.int8)
        img[:m * R].reshape(m, R)[:, :kl] = a[:, k0:k0 + kl]
        img[m * R:].reshape(R, C)[:kl, :nl] = b[k0:k0 + kl, n0:n0 + nl]
        buffers.append((base, img))
        acc = Flag.ACCUMULATE if k0 else Flag.NONE
        instrs += [Instr(Opcode.MM_LW, (base + m * R, kl, nl, C), dtype=I8),
                   Instr(Opcode.MM_MUL, (n0, base, m, kl, R, n), dtype=I8, flags=acc)]
    return _Plan(cfg, instrs, buffers, 2)


def _os_plan(R: int, C: int, a: np.ndarray, b: np.ndarray) -> _Plan:
    """(m-tile, n-tile) folds, n-tiles inner; each MM_OS streams all of K."""
    (m, k), n = a.shape, b.shape[1]
    panel = R * k + k * C  # A block (R x K, stride K) + B block (K x C, stride C)
    cfg = CoreConfig(R, C, "int8", sram_words=banks_for(2 * panel),
                     acc_words=banks_for(max(m * n, C)))
    instrs, buffers = [], []
    folds = [(m0, n0) for m0 in range(0, m, R) for n0 in range(0, n, C)]
    for f, (m0, n0) in enumerate(folds):
        ml, nl, base = min(R, m - m0), min(C, n - n0), (f % 2) * panel
        img = np.zeros(panel, np.int8)
        img[:R * k].reshape(R, k)[:ml] = a[m0:m0 + ml]
        img[R * k:].reshape(k, C)[:, :nl] = b[:, n0:n0 + nl]
        buffers.append((base, img))
        instrs.append(Instr(Opcode.MM_OS, (m0 * n + n0, base, base + R * k, ml, nl, k, k, C,
                                           n), dtype=I8))
    return _Plan(cfg, instrs, buffers, 1)


def run_gemm(rows: int, cols: int, m: int, n: int, k: int, seed: int = 0,
             dataflow: str = "ws") -> GemmRun:
    """Run the GEMM on a rows x cols int8 RTL core and time it."""
    if min(m, n, k) < 1:
        raise RtlError(f"GEMM dims must be positive, got m={m} n={n} k={k}")
    if dataflow not in ("ws", "os"):
        raise RtlError(f"dataflow must be 'ws' or 'os', got {dataflow!r}")
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    plan = (_ws_plan if dataflow == "ws" else _os_plan)(rows, cols, a, b)
    sched = Scheduler([plan.instrs], plan.cfg.timing(), None, False)
    sched.run()
    rtl, got = _run_rtl(plan, m * n, sched.cycles)
    exact = np.array_equal(got.view(np.int32).reshape(m, n),
                           (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32))
    return GemmRun(rows, cols, m, n, k, len(plan.buffers), rtl, sched.cycles,
                   systolic_compute_cycles(dataflow, rows, cols, m, n, k), exact, dataflow)


def _run_rtl(plan: _Plan, words: int, model: int) -> tuple[int, np.ndarray]:
    """(cycles from the first accept to the last accumulator write, accumulator words)."""
    cfg = plan.cfg
    core, layout = MatrixCore(cfg), cfg.layout()
    queue = [layout.const(payload(cfg, i)).as_value().value for i in plan.instrs]
    out: dict[str, object] = {}

    def poke(ctx, f: int) -> None:
        base, img = plan.buffers[f]
        nb = len(core.sram.banks)
        for e, v in enumerate(img.view(np.uint8).tolist(), start=base):
            ctx.set(core.sram.banks[e % nb].data[e // nb], v)

    async def bench(ctx) -> None:
        poke(ctx, 0)
        pending, cycle, accepted, done, first, last = list(queue), 0, 0, 0, -1, -1
        busy = True
        while done < len(queue) or busy:
            ctx.set(core.instr.valid, bool(pending))
            if pending:
                ctx.set(core.instr.payload.as_value(), pending[0])
            _, _, ready, acc_, dn, we, os_we, busy = await ctx.tick().sample(
                core.instr.ready, core.accepted, core.done, core.acc_we, core.os_we,
                core.busy)
            if pending and ready:
                pending.pop(0)
            if acc_:
                first = cycle if first < 0 else first
                fold = accepted // plan.per_fold
                if accepted % plan.per_fold == 0 and fold + 1 < len(plan.buffers):
                    poke(ctx, fold + 1)  # fold f runs: fill fold f + 1's buffer
                accepted += 1
            done += dn
            if we or os_we:
                last = cycle
            cycle += 1
            if cycle > model + 64:
                raise RtlError("the RTL GEMM did not finish in the model's cycles")
        nb = len(core.acc.banks)
        out["acc"] = np.array([ctx.get(core.acc.banks[e % nb].data[e // nb])
                               for e in range(words)], np.uint32)
        out["cycles"] = last - first

    sim = Simulator(core)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    return int(out["cycles"]), out["acc"]
