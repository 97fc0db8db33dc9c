"""What each instruction does: the definition of the ISA's semantics (docs/isa.md says the
same in prose). One function per opcode in :data:`SEMANTICS`, called when the instruction
starts; each raises Fault on an operand the hardware cannot take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chipforge.isa import BinOp, Dtype, Flag, Instr, Opcode, RedOp, UnOp
from chipforge.machine import CoreTiming
from chipforge.numerics import cast, dtype_name, matmul_into, np_dtype, sum_f32, to_f32
from chipforge.sim._state import (
    F32,
    I32,
    U8,
    CoreState,
    Fault,
    acc_region,
    check_acc,
    region,
)
from chipforge.sim._vector import BINARY, UNARY

MM_DTYPES = ("fp32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "int8")


@dataclass
class Machine:
    timing: CoreTiming
    dram: np.ndarray  # np.uint8
    cores: list[CoreState]


def _sram(c: CoreState, addr: int, rows: int, cols: int, stride: int, dt: np.dtype,
          what: str) -> np.ndarray:
    return region(c.sram, addr, rows, cols, stride, dt, what, f"SRAM of core {c.index}")


def _sram_out(c: CoreState, addr: int, rows: int, cols: int, stride: int, dt: np.dtype,
              what: str) -> np.ndarray:
    """A view about to be written: the core's memoized operands over it are dropped."""
    view = _sram(c, addr, rows, cols, stride, dt, what)
    if view.size:
        c.written(addr, addr + ((rows - 1) * stride + cols) * dt.itemsize)
    return view


def _dram(m: Machine, addr: int, rows: int, cols: int, stride: int, dt: np.dtype,
          what: str = "dram") -> np.ndarray:
    return region(m.dram, addr, rows, cols, stride, dt, what, "DRAM")


# --- DMA: byte copies, so rows are viewed as uint8 runs of cols * itemsize bytes ---------

_TRANSPOSE = getattr(Flag, "TRANSPOSE", Flag.NONE)


def dma_load(m: Machine, c: CoreState, ins: Instr) -> None:
    dram, sram, rows, cols, dstride, sstride = ins.args
    n = ins.dtype.itemsize
    if ins.flags & _TRANSPOSE:
        # SRAM gets the cols x rows transpose: its row j (sram_stride apart) is DRAM column j
        src = _dram(m, dram, rows, cols, dstride, np.dtype(f"V{n}"))
        _sram_out(c, sram, cols, rows, sstride, np.dtype(f"V{n}"), "sram")[...] = src.T
        return
    src = _dram(m, dram, rows, cols * n, dstride * n, U8)
    dst = _sram(c, sram, rows, cols * n, sstride * n, U8, "sram")
    if dst.size and c.keeps(sram, sram + ((rows - 1) * sstride + cols) * n) \
            and np.array_equal(dst, src):
        return  # the same bytes again (a reloaded tile): what was decoded from them stays
    _sram_out(c, sram, rows, cols * n, sstride * n, U8, "sram")[...] = src


def dma_store(m: Machine, c: CoreState, ins: Instr) -> None:
    dram, sram, rows, cols, dstride, sstride = ins.args
    n = ins.dtype.itemsize
    src = _sram(c, sram, rows, cols * n, sstride * n, U8, "sram")
    _dram(m, dram, rows, cols * n, dstride * n, U8)[...] = src


def _indices(c: CoreState, index: int, rows: int, table_rows: int) -> np.ndarray:
    idx = _sram(c, index, 1, rows, rows, I32, "index")[0]
    bad = np.nonzero((idx < 0) | (idx >= table_rows))[0]
    if bad.size:
        i = int(bad[0])
        raise Fault(f"index[{i}] = {int(idx[i])}, expected 0 <= index < table_rows = "
                    f"{table_rows}")
    return idx


def dma_gather(m: Machine, c: CoreState, ins: Instr) -> None:
    dram, sram, index, rows, cols, table_rows = ins.args
    n = ins.dtype.itemsize
    idx = _indices(c, index, rows, table_rows)
    table = _dram(m, dram, table_rows, cols * n, cols * n, U8, "dram")
    _sram_out(c, sram, rows, cols * n, cols * n, U8, "sram")[...] = table[idx]


def dma_scatter(m: Machine, c: CoreState, ins: Instr) -> None:
    """SRAM row i -> DRAM table row index[i], in order: a repeated index keeps the last."""
    dram, sram, index, rows, cols, table_rows = ins.args
    n = ins.dtype.itemsize
    idx = _indices(c, index, rows, table_rows)
    src = _sram(c, sram, rows, cols * n, cols * n, U8, "sram")
    table = _dram(m, dram, table_rows, cols * n, cols * n, U8, "dram")
    uniq, first_from_end = np.unique(idx[::-1], return_index=True)
    table[uniq] = src[rows - 1 - first_from_end]


# --- matrix unit -----------------------------------------------------------------------

def _mm_dtype(m: Machine, ins: Instr) -> tuple[np.dtype, np.dtype]:
    """(operand dtype, accumulator view dtype) of a matmul instruction."""
    name = dtype_name(ins.dtype)
    if name not in MM_DTYPES or not m.timing.macs_per_cycle.get(name):
        have = [d for d in MM_DTYPES if m.timing.macs_per_cycle.get(d)]
        raise Fault(f"dtype={name}, expected a matrix dtype of this chip: {', '.join(have)}")
    return np_dtype(name), (I32 if name == "int8" else F32)


def _check(what: str, value: int, limit: int, why: str) -> None:
    if value > limit:
        raise Fault(f"{what}={value}, expected <= {limit} ({why})")


def mm_lw(m: Machine, c: CoreState, ins: Instr) -> None:
    sram, k, n, stride = ins.args
    dt, _ = _mm_dtype(m, ins)
    _check("k", k, m.timing.rows, "array rows")
    name = dtype_name(ins.dtype)
    _check("n", n, m.timing.array_cols(name), f"array columns for {name}")
    c.load_weight(_sram(c, sram, k, n, stride, dt, "sram"), sram, stride)
    c.weight_dtype, c.weight_shape = ins.dtype, (k, n)


_ACC_T_MIN = 4096  # outputs; smaller float32 MM_MULs write accumulator memory directly


def mm_mul(m: Machine, c: CoreState, ins: Instr) -> None:
    acc, sram, rows, k, stride, acc_stride = ins.args
    dt, acc_dt = _mm_dtype(m, ins)
    if c.weight_raw is None:
        raise Fault("no weight tile loaded, expected an MM_LW before MM_MUL")
    if ins.dtype != c.weight_dtype:
        raise Fault(f"dtype={dtype_name(ins.dtype)}, expected the loaded weight tile's "
                    f"{dtype_name(c.weight_dtype)}")
    wk, wn = c.weight_shape
    if k != wk:
        raise Fault(f"k={k}, expected the loaded weight tile's k = {wk}")
    view = _sram(c, sram, rows, k, stride, dt, "sram")
    check_acc(acc, rows, wn, acc_stride)
    a = c.operand(view, sram, stride, axis=1)
    accumulate = bool(ins.flags & Flag.ACCUMULATE)
    if (acc_stride >= wn and rows * wn >= _ACC_T_MIN
            and (acc_dt is F32 or a.f64.dtype == np.float32)):
        # rows that do not overlap: deferred, then batched with the next MM_MULs on this A
        # (CoreState.defer_mm, sim._batch). The product is float64 that rounds to the exact
        # float32, or (int8, k <= 1024) float32 holding the exact integers (|x| <= 2**24),
        # cast to int32 exactly
        c.defer_mm(a, c.weight_raw, c.weight_src, (acc, rows, wn, acc_stride, accumulate),
                   acc_dt)
        return
    # float32: the product rounded once, then (ACCUMULATE) one RNE add; int32: wraps
    matmul_into(a, c.weight, acc_region(c, acc, rows, wn, acc_stride, acc_dt), accumulate)


def mm_os(m: Machine, c: CoreState, ins: Instr) -> None:
    acc, a_addr, b_addr, rows, n, k, a_stride, b_stride, acc_stride = ins.args
    dt, acc_dt = _mm_dtype(m, ins)
    _check("m", rows, m.timing.rows, "array rows")
    name = dtype_name(ins.dtype)
    _check("n", n, m.timing.array_cols(name), f"array columns for {name}")
    a = c.operand(_sram(c, a_addr, rows, k, a_stride, dt, "a"), a_addr, a_stride, axis=1)
    b_view = _sram(c, b_addr, k, n, b_stride, dt, "b")
    check_acc(acc, rows, n, acc_stride)
    accumulate = bool(ins.flags & Flag.ACCUMULATE)
    if acc_stride >= n and (acc_dt is F32 or a.f64.dtype == np.float32):
        # deferred and batched with the next MM_OSs on these A rows, as MM_MUL; B's block
        # stays a pinned view of SRAM (adjacent blocks decode as one cached operand). Any
        # size: a compiled GEMM's MM_OSs are single array blocks (forge-i1: 32 x 64 outputs,
        # below _ACC_T_MIN), and batching them took GPT-2 small's simulation 4% less CPU
        src = (b_addr, k, n, b_stride, b_view.dtype) if b_view.size else None
        c.defer_mm(a, b_view, src, (acc, rows, n, acc_stride, accumulate), acc_dt, memo=True)
        return
    b = c.operand(b_view, b_addr, b_stride, axis=0)
    matmul_into(a, b, acc_region(c, acc, rows, n, acc_stride, acc_dt), accumulate)


# --- vector unit: read as dtype_a/dtype_b, compute in float32, round once to dtype ------

def _read(c: CoreState, addr: int, rows: int, cols: int, stride: int, dtype: Dtype,
          what: str) -> np.ndarray:
    return to_f32(_sram(c, addr, rows, cols, stride, np_dtype(dtype), what))


_CAST_FLAGS = Flag.ROUND_TOWARD_ZERO | Flag.SATURATE  # rounding other than plain RNE
_FLOAT_OUT = {Dtype.FP32, Dtype.BF16, Dtype.FP16, Dtype.FP8_E4M3, Dtype.FP8_E5M2}


def _write(c: CoreState, ins: Instr, dst: int, rows: int, cols: int, stride: int,
           value: np.ndarray) -> None:
    value = np.asarray(value, np.float32)
    out = _sram_out(c, dst, rows, cols, stride, np_dtype(ins.dtype), "dst")
    if not ins.flags & _CAST_FLAGS and ins.dtype in _FLOAT_OUT:
        # RNE without saturation is cast()'s plain astype; copyto does the same conversion
        # straight into SRAM (one pass, not a cast and then a strided copy)
        with np.errstate(over="ignore", invalid="ignore"):
            np.copyto(out, value, casting="unsafe")
        return
    rounding = "rtz" if ins.flags & Flag.ROUND_TOWARD_ZERO else "rne"
    out[...] = cast(value, ins.dtype, rounding, bool(ins.flags & Flag.SATURATE))


def _alu(enum: type, ins: Instr) -> object:
    try:
        return enum(ins.alu)
    except ValueError:
        raise Fault(f"alu={ins.alu}, expected one of {', '.join(e.name for e in enum)}") \
            from None


def v_un(m: Machine, c: CoreState, ins: Instr) -> None:
    dst, a, rows, cols, dst_stride, a_stride = ins.args
    op = UNARY[_alu(UnOp, ins)]
    a_cols = 1 if ins.flags & Flag.A_COL else cols
    x = _read(c, a, rows, a_cols, a_stride, ins.dtype_a, "a")
    with np.errstate(all="ignore"):
        y = op(x)
    _write(c, ins, dst, rows, cols, dst_stride, np.broadcast_to(y, (rows, cols)))


def v_bin(m: Machine, c: CoreState, ins: Instr) -> None:
    dst, a, b, rows, cols, dst_stride, a_stride, b_stride = ins.args
    op = BINARY[_alu(BinOp, ins)]
    x = _read(c, a, rows, 1 if ins.flags & Flag.A_COL else cols, a_stride, ins.dtype_a, "a")
    if ins.flags & Flag.B_IMM:
        y = np.float32(ins.imm)
    else:
        y = _read(c, b, rows, 1 if ins.flags & Flag.B_COL else cols, b_stride, ins.dtype_b, "b")
    with np.errstate(all="ignore"):
        z = op(x, y)
    _write(c, ins, dst, rows, cols, dst_stride, np.broadcast_to(z, (rows, cols)))


def v_red(m: Machine, c: CoreState, ins: Instr) -> None:
    dst, a, rows, cols, a_stride = ins.args
    op = _alu(RedOp, ins)
    x = _read(c, a, rows, cols, a_stride, ins.dtype_a, "a")
    if op is RedOp.SUM:
        y = sum_f32(x)  # exact sum rounded once: no low-precision or order dependence
    elif cols == 0:
        y = np.full(rows, -np.inf, np.float32)  # max over nothing: the identity
    else:
        y = x.max(axis=1)
    _write(c, ins, dst, 1, rows, rows, y[None, :])


def v_acc(m: Machine, c: CoreState, ins: Instr) -> None:
    dst, acc, rows, cols, dst_stride, acc_stride = ins.args
    if ins.dtype_a not in (Dtype.FP32, Dtype.INT32):
        raise Fault(f"dtype_a={dtype_name(ins.dtype_a)}, expected fp32 or int32 "
                    "(the accumulators' view)")
    acc_dt = F32 if ins.dtype_a == Dtype.FP32 else I32
    held = c.held(acc, rows, cols, acc_stride, acc_dt)
    # the tile MM_MULs left transposed (CoreState.acc_t) is read there
    view = held.T if held is not None else acc_region(c, acc, rows, cols, acc_stride, acc_dt)
    y, scale = to_f32(view), np.float32(ins.imm)
    if scale != 1:  # x * 1 == x exactly (accumulators never hold a signaling NaN)
        y = y * scale
    _write(c, ins, dst, rows, cols, dst_stride, y)  # before CLEAR: y may be ``view``
    if ins.flags & Flag.CLEAR:
        view[...] = 0


def v_fill(m: Machine, c: CoreState, ins: Instr) -> None:
    dst, rows, cols, dst_stride = ins.args
    _write(c, ins, dst, rows, cols, dst_stride,
           np.full((rows, cols), np.float32(ins.imm), np.float32))


def nothing(m: Machine, c: CoreState, ins: Instr) -> None:
    """NOP, HALT and BARRIER act on control flow only (the scheduler)."""


SEMANTICS: dict[Opcode, Callable[[Machine, CoreState, Instr], None]] = {
    Opcode.NOP: nothing, Opcode.HALT: nothing, Opcode.BARRIER: nothing,
    Opcode.DMA_LOAD: dma_load, Opcode.DMA_STORE: dma_store, Opcode.DMA_GATHER: dma_gather,
    **({Opcode.DMA_SCATTER: dma_scatter} if hasattr(Opcode, "DMA_SCATTER") else {}),
    Opcode.MM_LW: mm_lw, Opcode.MM_MUL: mm_mul, Opcode.MM_OS: mm_os,
    Opcode.V_UN: v_un, Opcode.V_BIN: v_bin, Opcode.V_RED: v_red, Opcode.V_ACC: v_acc,
    Opcode.V_FILL: v_fill,
}
