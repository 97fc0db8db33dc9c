"""Speed of the chipforge simulator.

    .venv/bin/python bench/bench_sim.py [--size 1024] [--instrs 200000] [--chip forge-t1]

Targets: (1) functional simulation of a large GEMM (bf16, and int8) at >= 25% of the FLOP/s
of numpy's float32 GEMM of the same matrices, measured in this run on this machine; (2) the timing
simulator at >= 1,000,000 instructions per minute (functional=False) on a >= 200k
instruction program with semaphores. Also prints functional=True speed on small tiles.
Prints ratios to the targets; exits 1 if a target is missed. BLAS runs on one thread
(override with OPENBLAS_NUM_THREADS) for numpy and the simulator alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from fractions import Fraction

# one BLAS thread for numpy and the simulator alike: the ratio is then per core, and a
# second busy process cannot make OpenBLAS's spinning threads thrash (seen: 20x slower)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from chipforge.arch import load_chip
from chipforge.isa import BinOp, Dtype, Flag, Instr, Opcode, Program  # noqa: E402
from chipforge.isa import TensorPlacement as TP  # noqa: E402
from chipforge.machine import ACCUMULATOR_WORDS, CoreTiming  # noqa: E402
from chipforge.numerics import cast  # noqa: E402
from chipforge.perf import DEFAULT, search_matmul  # noqa: E402
from chipforge.sim import simulate  # noqa: E402

GEMM_TARGET, IPM_TARGET = 0.25, 1_000_000
BF16 = Dtype.BF16


def _gemm_layout(size: int, dt: Dtype) -> tuple[int, int, int, int, Dtype]:
    """(operand bytes, A, B and C DRAM addresses, accumulator dtype) of a bench GEMM: A and
    B in ``dt``, C in bf16 either way."""
    e = dt.itemsize
    return e, 0, size * size * e, 2 * size * size * e, Dtype.INT32 if dt == Dtype.INT8 \
        else Dtype.FP32


def _gemm(chip: str, code: list[Instr], size: int, dt: Dtype) -> Program:
    """A bench GEMM's program: ``code`` on core 0, then HALT; inputs A, B, output C."""
    _, a_dram, b_dram, c_dram, _ = _gemm_layout(size, dt)
    shape = (size, size)
    name = "int8" if dt == Dtype.INT8 else "bf16"
    return Program(chip, [code + [Instr(Opcode.HALT)]], c_dram + size * size * 2,
                   {"A": TP("A", a_dram, shape, name), "B": TP("B", b_dram, shape, name),
                    "C": TP("C", c_dram, shape, "bf16")}, ["A", "B"], ["C"])


def ws_program(size: int, dt: Dtype = BF16, chip: str = "forge-t1") -> Program:
    """C[size x size] = A @ B on core 0 of ``chip``, tiled to its array as the compiler's
    matmul kernel tiles it (weight-stationary, k tiles outer and weight tiles inner within
    a step, see compiler/lower/_matmul_kernel._mm_step). A stays resident in SRAM. B streams in
    double-buffered blocks of ``per`` panels, each panel as wide as the array, where
    ``per`` is the most that double-buffered accumulators hold. Per block and k tile, each
    panel's rows x cols weight tile (MM_LW) multiplies all rows of A (MM_MUL, m = size)
    into that panel's accumulators (fp32, int32 for int8); V_ACC rounds each panel to bf16
    into the block's C buffer; one DMA_STORE writes the block.
    Semaphores: 1 = A and B blocks loaded (DMA order), 2 = blocks multiplied, 3 = C blocks
    stored, 4 = panels read out of the accumulators."""
    t = CoreTiming.of(load_chip(chip))
    kt, nt = t.rows, t.array_cols(dt.name_str)  # weight tile: k x n
    per = max(1, min(size // nt, ACCUMULATOR_WORDS // (2 * size * nt)))  # panels per block
    bw = per * nt  # block width
    e, a_dram, b_dram, c_dram, acc_dt = _gemm_layout(size, dt)
    a_sram = 0
    b_sram = [size * size * e + i * size * bw * e for i in range(2)]
    c_sram = [b_sram[1] + size * bw * e + i * size * bw * 2 for i in range(2)]
    blocks, ktiles = size // bw, size // kt

    def acc_tile(blk: int, p: int) -> int:
        return ((blk % 2) * per + p) * size * nt

    def load_b(blk: int, wait: tuple[int, int] | None) -> Instr:
        return Instr(Opcode.DMA_LOAD, (b_dram + blk * bw * e, b_sram[blk % 2], size, bw,
                                       size, bw), dtype=dt, wait=wait, signal=1,
                     comment="load B: DMA")

    code = [Instr(Opcode.DMA_LOAD, (a_dram, a_sram, size, size, size, size), dtype=dt,
                  signal=1, comment="load A: DMA"), load_b(0, None)]
    for j in range(blocks):
        if j + 1 < blocks:  # prefetch into the buffer the previous block's MMs read
            code.append(load_b(j + 1, (2, j) if j >= 1 else None))
        for kk in range(ktiles):
            for p in range(per):
                first, last = kk == 0 and p == 0, kk == ktiles - 1 and p == per - 1
                code.append(Instr(Opcode.MM_LW, (b_sram[j % 2] + (kk * kt * bw + p * nt) * e,
                                                 kt, nt, bw), dtype=dt,
                                  wait=(1, j + 2) if first else None, comment="gemm: weights"))
                # the accumulators were last read by the V_ACCs of block j - 2
                code.append(Instr(Opcode.MM_MUL, (acc_tile(j, p), a_sram + kk * kt * e, size,
                                                  kt, size, nt), dtype=dt,
                                  flags=Flag.ACCUMULATE if kk else Flag.NONE,
                                  wait=(4, per * (j - 1)) if first and j >= 2 else None,
                                  signal=2 if last else None, comment="gemm: MM_MUL"))
        for p in range(per):  # the C buffer was last read by the store of block j - 2
            code.append(Instr(Opcode.V_ACC, (c_sram[j % 2] + p * nt * 2, acc_tile(j, p),
                                             size, nt, bw, nt),
                              dtype=BF16, dtype_a=acc_dt, imm=1.0,
                              wait=(2, j + 1) if p == 0 else None,
                              wait2=(3, j - 1) if p == 0 and j >= 2 else None, signal=4,
                              comment="round C: V_ACC"))
        code.append(Instr(Opcode.DMA_STORE, (c_dram + j * bw * 2, c_sram[j % 2], size, bw,
                                             size, bw), dtype=BF16, wait=(4, per * (j + 1)),
                          signal=3, comment="store C: DMA"))
    return _gemm(chip, code, size, dt)


def os_program(size: int, dt: Dtype = BF16, chip: str = "forge-t1") -> Program:
    """C[size x size] = A @ B on core 0 of ``chip`` in the output-stationary dataflow, the
    one the performance engine's mapping search picks for this GEMM (engine_dataflow), with
    its SRAM tile's k (all of k: one rounding per output) and m (the array's rows). B stays
    resident in SRAM; A streams in double-buffered blocks of ``rows`` rows. Per block, one
    MM_OS per array-wide column block of the output (rows x cols outputs, k = size) into
    the block's accumulators (fp32, int32 for int8), one V_ACC rounds the block to bf16,
    one DMA_STORE writes it. Semaphores: 1 = B and A blocks loaded (DMA order), 2 = blocks
    multiplied, 3 = C blocks stored, 4 = blocks read out of the accumulators."""
    t = CoreTiming.of(load_chip(chip))
    rows, nt = t.rows, t.array_cols(dt.name_str)
    e, a_dram, b_dram, c_dram, acc_dt = _gemm_layout(size, dt)
    b_sram = 0
    a_sram = [size * size * e + i * rows * size * e for i in range(2)]
    c_sram = [a_sram[1] + rows * size * e + i * rows * size * 2 for i in range(2)]
    accs = [0, rows * size]
    blocks = size // rows

    def load_a(i: int, wait: tuple[int, int] | None) -> Instr:
        return Instr(Opcode.DMA_LOAD, (a_dram + i * rows * size * e, a_sram[i % 2], rows, size,
                                       size, size), dtype=dt, wait=wait, signal=1,
                     comment="load A: DMA")

    code = [Instr(Opcode.DMA_LOAD, (b_dram, b_sram, size, size, size, size), dtype=dt,
                  signal=1, comment="load B: DMA"), load_a(0, None)]
    for i in range(blocks):
        if i + 1 < blocks:  # prefetch into the buffer the previous block's MMs read
            code.append(load_a(i + 1, (2, i) if i >= 1 else None))
        cols = size // nt
        for j in range(cols):
            first, last = j == 0, j == cols - 1
            # the accumulators were last read by the V_ACC of block i - 2
            code.append(Instr(Opcode.MM_OS, (accs[i % 2] + j * nt, a_sram[i % 2],
                                             b_sram + j * nt * e, rows, nt, size, size, size,
                                             size), dtype=dt,
                              wait=(1, i + 2) if first else None,
                              wait2=(4, i - 1) if first and i >= 2 else None,
                              signal=2 if last else None, comment="gemm: MM_OS"))
        # the C buffer was last read by the store of block i - 2
        code.append(Instr(Opcode.V_ACC, (c_sram[i % 2], accs[i % 2], rows, size, size, size),
                          dtype=BF16, dtype_a=acc_dt, imm=1.0, wait=(2, i + 1),
                          wait2=(3, i - 1) if i >= 2 else None, signal=4,
                          comment="round C: V_ACC"))
        code.append(Instr(Opcode.DMA_STORE, (c_dram + i * rows * size * 2, c_sram[i % 2], rows,
                                             size, size, size), dtype=BF16, wait=(4, i + 1),
                          signal=3, comment="store C: DMA"))
    return _gemm(chip, code, size, dt)


PROGRAMS = {"os": os_program, "ws": ws_program}


def engine_dataflow(chip: str, size: int, dt: Dtype) -> str:
    """The dataflow the performance engine's mapping search picks for this GEMM on one
    core of ``chip`` (the compiler follows that choice)."""
    spec = load_chip(chip)
    one = spec.model_copy(update={"cores": spec.cores.model_copy(
        update={"count": 1, "physical_count": None})})
    name = "int8" if dt == Dtype.INT8 else "bf16"
    return search_matmul(one, size, size, size, 1, name, dt.itemsize, DEFAULT).dataflow


def mixed_program(n_instrs: int, cores: int = 4, tile: int = 8) -> Program:
    """A software-pipelined loop per core on tile x tile tiles: load (DMA), weights + matmul
    (MXU), rescale + round (VEC), store (DMA), each step waiting on the previous one."""
    per_iter, e = 6, 2
    streams = []
    for c in range(cores):
        code: list[Instr] = []
        base = c * 4 * tile * tile * e
        for i in range(n_instrs // (per_iter * cores)):
            code += [
                Instr(Opcode.DMA_LOAD, (base, 0, tile, tile, tile, tile), dtype=BF16,
                      wait=(5, i - 1) if i else None, signal=1, comment="load: DMA"),
                Instr(Opcode.MM_LW, (0, tile, tile, tile), dtype=BF16, wait=(1, i + 1),
                      comment="mm: weights"),
                Instr(Opcode.MM_MUL, (0, 0, tile, tile, tile, tile), dtype=BF16, signal=2,
                      comment="mm: MM_MUL"),
                Instr(Opcode.V_ACC, (256, 0, tile, tile, tile, tile), dtype=Dtype.FP32,
                      imm=0.5, wait=(2, i + 1), comment="scale: V_ACC"),
                Instr(Opcode.V_BIN, (512, 256, 0, tile, tile, tile, tile, 0), alu=BinOp.ADD,
                      dtype=BF16, flags=Flag.B_IMM, imm=1.0, signal=3, comment="bias: V_BIN"),
                Instr(Opcode.DMA_STORE, (base + 2 * tile * tile * e, 512, tile, tile, tile,
                                         tile), dtype=BF16, wait=(3, i + 1), signal=5,
                      comment="store: DMA")]
        streams.append(code + [Instr(Opcode.HALT)])
    return Program("forge-t1", streams, cores * 4 * tile * tile * e)


def _best(fn, reps: int) -> tuple[float, object]:
    """Fastest of ``reps`` runs (after one warm-up): other load on the machine only slows."""
    out = fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _f32_of(x: Fraction) -> np.float32:
    """``x`` rounded to float32, to nearest, ties to even, decided exactly: float() rounds
    once to float64, so the answer is its float32 rounding or a neighbour."""
    f = np.float32(float(x))
    cands = (np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf)))
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - x),
                                     int(c.view(np.uint32)) & 1))


def _exact_output(a: np.ndarray, b: np.ndarray, i: int, j: int, kt: int) -> np.float32:
    """C[i, j] as the ISA defines it, in exact rational arithmetic: per k tile of ``kt``
    (one MM instruction's k) the exact sum of the products rounded once to float32, the
    tiles added in float32 (numpy's float32 add rounds to nearest even)."""
    acc = np.float32(0)
    for k0 in range(0, a.shape[1], kt):
        s = sum(Fraction(float(a[i, k])) * Fraction(float(b[k, j])) for k in range(k0, k0 + kt))
        acc = _f32_of(s) if k0 == 0 else np.float32(acc + _f32_of(s))
    return acc


def _check_float(c: np.ndarray, a: np.ndarray, b: np.ndarray, kt: int) -> tuple[int, int]:
    """(outputs of bf16 ``c`` that differ from the ISA's result, outputs re-derived): a
    float64 GEMM per k tile rounded to float32 is the oracle; where it disagrees with the
    simulator (float64 need not be exact), the output is re-derived with Fractions."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    acc = np.zeros(c.shape, np.float32)
    for k0 in range(0, a.shape[1], kt):
        acc += (a64[:, k0:k0 + kt] @ b64[k0:k0 + kt]).astype(np.float32)
    got = c.view(np.uint16)
    rows, cols = np.nonzero(got != cast(acc, "bf16").view(np.uint16))
    if rows.size > 64:  # far too many to be float64's rounding: report them as they are
        return int(rows.size), 0
    bad = sum(int(cast(np.array([_exact_output(a, b, i, j, kt)]), "bf16").view(np.uint16)[0])
              != int(got[i, j]) for i, j in zip(rows, cols))
    return bad, int(rows.size)


def _check_int8(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    exact = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.float32)  # |x| < 2**24
    return int(np.sum(c.view(np.uint16) != cast(exact, "bf16").view(np.uint16))), 0


def _operands(size: int, dt: Dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(A, B) in ``dt`` and as float32 (the numpy reference's operands)."""
    if dt == Dtype.INT8:
        rng = np.random.default_rng(1)
        a = rng.integers(-128, 128, (size, size)).astype(np.int8)
        b = rng.integers(-128, 128, (size, size)).astype(np.int8)
        return a, b, a.astype(np.float32), b.astype(np.float32)
    rng = np.random.default_rng(0)
    a32 = rng.standard_normal((size, size)).astype(np.float32)
    b32 = rng.standard_normal((size, size)).astype(np.float32)
    return cast(a32, "bf16"), cast(b32, "bf16"), a32, b32


def bench_gemm(size: int, chip: str, dt: Dtype) -> float:
    """The functional simulator on one GEMM, in the dataflow the engine picks (the target)
    and in the other one (context), against numpy's float32 GEMM of the same operands."""
    a, b, a32, b32 = _operands(size, dt)
    name = "int8" if dt == Dtype.INT8 else "bf16"
    t = CoreTiming.of(load_chip(chip))
    t_np, _ = _best(lambda: a32 @ b32, 10)
    flops = 2.0 * size ** 3
    target = engine_dataflow(chip, size, dt)
    unit = "GOP/s" if dt == Dtype.INT8 else "GFLOP/s"
    print(f"GEMM {size}^3 {name} ({'int32' if dt == Dtype.INT8 else 'fp32'} accumulation, "
          f"bf16 out), 1 core of {chip} ({t.rows}x{t.array_cols(dt.name_str)} {name} array); numpy "
          f"f32 GEMM {t_np * 1e3:.1f} ms = {flops / t_np / 1e9:.1f} GFLOP/s")
    ratios = {}
    for df in (target, "ws" if target == "os" else "os"):
        prog = PROGRAMS[df](size, dt, chip)
        t_sim, res = _best(lambda prog=prog: simulate(prog, chip, {"A": a, "B": b}), 9)
        c = res.outputs["C"]
        kt = t.rows if df == "ws" else size  # one MM instruction's k
        bad, rederived = _check_int8(c, a, b) if dt == Dtype.INT8 else _check_float(c, a, b,
                                                                                   kt)
        ratios[df] = t_np / t_sim
        role = "the engine's mapping: TARGET" if df == target else "context"
        print(f"  {df} ({role}): {res.instructions} instructions, {res.cycles} cycles "
              f"(MXU utilization {res.utilization[(0, 'MXU')]:.1%}); functional sim "
              f"{t_sim * 1e3:.1f} ms = {flops / t_sim / 1e9:.1f} {unit}, ratio "
              f"{ratios[df]:.2f} (target >= {GEMM_TARGET}); {bad} outputs differ from the "
              f"ISA's exact result (expected 0; {rederived} re-derived with fractions)")
    if dt != Dtype.INT8:  # context: float64 is the precision the exact sums need
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        t_np64, _ = _best(lambda: a64 @ b64, 10)
        print(f"  context: numpy f64 GEMM {t_np64 * 1e3:.1f} ms (the target stays on f32)")
    return ratios[target]


def bench_timing(n: int) -> float:
    prog = mixed_program(n)
    t0 = time.perf_counter()
    res = simulate(prog, "forge-t1", functional=False)
    dt = time.perf_counter() - t0
    ipm = res.instructions / dt * 60
    print(f"timing only: {res.instructions} instructions on {len(prog.cores)} cores in "
          f"{dt:.2f} s = {ipm / 1e6:.2f} M instructions/minute (target >= "
          f"{IPM_TARGET / 1e6:.0f} M; ratio {ipm / IPM_TARGET:.1f})")
    small = mixed_program(n // 10)
    t0 = time.perf_counter()
    res = simulate(small, "forge-t1")
    dt = time.perf_counter() - t0
    print(f"functional + timing, 8x8 tiles: {res.instructions} instructions in {dt:.2f} s = "
          f"{res.instructions / dt * 60 / 1e6:.2f} M instructions/minute")
    return ipm / IPM_TARGET


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--instrs", type=int, default=200_000)
    ap.add_argument("--chip", default="forge-t1", help="catalog name or spec path (the GEMM "
                    "is tiled to its array)")
    args = ap.parse_args()
    bf16 = bench_gemm(args.size, args.chip, BF16)
    int8 = bench_gemm(args.size, args.chip, Dtype.INT8)
    ok = bench_timing(args.instrs) >= 1.0
    for name, ratio in (("bf16", bf16), ("int8", int8)):
        met = "met" if ratio >= GEMM_TARGET else "MISSED"
        print(f"functional GEMM target ({name}): {met} ({ratio:.2f} of numpy f32)")
        ok &= ratio >= GEMM_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
