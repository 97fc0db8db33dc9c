"""A whole int8 GEMM through the RTL controller, for the SCALE-Sim v3 cross-check.

C[M, N] = A[M, K] @ B[K, N] as weight-stationary folds, SCALE-Sim's order: for each
(k-tile, n-tile) one MM_LW of the K x N tile (k <= R, n <= C) and one MM_MUL streaming all
M rows into the output columns, ACCUMULATE after the first k-tile. The instructions are
queued back to back; the RTL's GEMM cycles run from accepting the first MM_LW to the last
accumulator write. Operand panels are double buffered in the SRAM: fold f + 1's panel is
written (by the testbench, in zero time, as a DMA would in the background) once fold f's
MM_LW is accepted, when nothing still reads that buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from chipforge.isa import Dtype, Flag, Instr, Opcode, cycles
from chipforge.perf.systolic import systolic_compute_cycles
from chipforge.rtl._config import CoreConfig, payload
from chipforge.rtl._core import MatrixCore
from chipforge.rtl._formats import RtlError, banks_for


@dataclass(frozen=True)
class GemmRun:
    rows: int
    cols: int
    m: int
    n: int
    k: int
    folds: int
    rtl_cycles: int
    model_cycles: int  # sum of chipforge.isa.cycles over the instructions
    scalesim_cycles: int  # chipforge.perf.systolic (== SCALE-Sim v3's compute cycles)
    exact: bool  # the accumulators equal A @ B (int32)


def _folds(R: int, C: int, K: int, N: int) -> list[tuple[int, int, int, int]]:
    """(k0, k_len, n0, n_len) per fold, k-tiles outer as in SCALE-Sim's ws mapping."""
    return [(k0, min(R, K - k0), n0, min(C, N - n0))
            for n0 in range(0, N, C) for k0 in range(0, K, R)]


def run_gemm(rows: int, cols: int, m: int, n: int, k: int, seed: int = 0) -> GemmRun:
    """Run the GEMM on a rows x cols int8 RTL core and time it."""
    if min(m, n, k) < 1:
        raise RtlError(f"GEMM dims must be positive, got m={m} n={n} k={k}")
    folds = _folds(rows, cols, k, n)
    panel = m * rows + rows * cols  # A panel (m x k_len, stride R) + W tile (R x C)
    cfg = CoreConfig(rows, cols, "int8", sram_words=banks_for(2 * panel),
                     acc_words=banks_for(max(m * n, cols)))
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    instrs, buffers = [], []
    for f, (k0, kl, n0, nl) in enumerate(folds):
        base = (f % 2) * panel
        img = np.zeros(panel, np.int8)
        img[:m * rows].reshape(m, rows)[:, :kl] = a[:, k0:k0 + kl]
        img[m * rows:].reshape(rows, cols)[:kl, :nl] = b[k0:k0 + kl, n0:n0 + nl]
        buffers.append((base, img))
        acc = Flag.ACCUMULATE if k0 else Flag.NONE
        instrs += [Instr(Opcode.MM_LW, (base + m * rows, kl, nl, cols), dtype=Dtype.INT8),
                   Instr(Opcode.MM_MUL, (n0, base, m, kl, rows, n), dtype=Dtype.INT8,
                         flags=acc)]
    core, layout = MatrixCore(cfg), cfg.layout()
    words = [layout.const(payload(cfg, i)).as_value().value for i in instrs]
    model = sum(cycles(i, cfg.timing()) for i in instrs)
    marks: dict[str, int] = {}

    def poke(ctx, f: int) -> None:
        base, img = buffers[f]
        nb = len(core.sram.banks)
        for e, v in enumerate(img.view(np.uint8).tolist(), start=base):
            ctx.set(core.sram.banks[e % nb].data[e // nb], v)

    async def bench(ctx) -> None:
        poke(ctx, 0)
        pending, cycle, accepted, done = list(words), 0, 0, 0
        while done < len(words):
            ctx.set(core.instr.valid, bool(pending))
            if pending:
                ctx.set(core.instr.payload.as_value(), pending[0])
            _, _, ready, acc_, dn = await ctx.tick().sample(core.instr.ready, core.accepted,
                                                            core.done)
            if pending and ready:
                pending.pop(0)
            if acc_:
                marks.setdefault("first", cycle)
                if accepted % 2 == 0 and accepted // 2 + 1 < len(folds):
                    poke(ctx, accepted // 2 + 1)  # fold f's MM_LW runs: fill f + 1's buffer
                accepted += 1
            if dn:
                done += 1
                marks["last"] = cycle
            cycle += 1
            if cycle > model + 64:
                raise RtlError("the RTL GEMM did not finish in the model's cycles")
        nb = len(core.acc.banks)
        got = [ctx.get(core.acc.banks[e % nb].data[e // nb]) for e in range(m * n)]
        marks["exact"] = int(np.array_equal(
            np.array(got, np.uint32).view(np.int32).reshape(m, n),
            (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)))

    sim = Simulator(core)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    return GemmRun(rows, cols, m, n, k, len(folds), marks["last"] - marks["first"], model,
                   systolic_compute_cycles("ws", rows, cols, m, n, k), bool(marks["exact"]))
