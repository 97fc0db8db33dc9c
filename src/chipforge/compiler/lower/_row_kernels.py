"""Row-wise vector kernels: elementwise, reductions, softmax, norms, casts, quantize.

A tensor is viewed as rows x cols (cols = the last dim). Rows are split across cores and
streamed through local SRAM in chunks with double buffering: the DMA loads chunk i+1 while
the vector unit computes chunk i and the previous chunk is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from chipforge.compiler.lower._emit import CoreEmitter, Token
from chipforge.compiler.lower._kernel_graph import CompileError, KernelNode
from chipforge.compiler.lower._layout_kernels import materialize_broadcast
from chipforge.compiler.lower._lowering import Buf, Lowering, saturate_finite, split
from chipforge.isa import BinOp, Dtype, Flag, Opcode, RedOp, UnOp
from chipforge.machine import POW_SEQUENCES as POW_FUNCTIONS
from chipforge.machine import ROW_CHUNK_ROWS

F32 = Dtype.FP32


@dataclass(frozen=True)
class RowOperand:
    """How an input feeds a rows x cols output: a full tensor, one row repeated, one
    element per row, or an immediate scalar."""

    kind: str  # "full" | "row" | "col" | "imm"
    buf: Buf | None = None
    imm: float = 0.0


def classify(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> str | None:
    """The operand kind of ``in_shape`` broadcast to ``out_shape`` split at the last dim."""
    pad = (1,) * (len(out_shape) - len(in_shape)) + tuple(in_shape)
    if pad == tuple(out_shape):
        return "full"
    lead, last = pad[:-1], pad[-1]
    if all(d == 1 for d in lead) and last == out_shape[-1]:
        return "row"
    if last == 1 and lead == tuple(out_shape[:-1]):
        return "col"
    if all(d == 1 for d in pad):
        return "scalar"
    return None


@dataclass
class Chunk:
    """SRAM addresses of one chunk's operands (per operand index) and output."""

    rows: int
    ins: list[int]
    out: int
    ready: Token | None  # the DMA token after which the chunk's inputs are in SRAM


def row_pipeline(lw: Lowering, out: Buf, operands: list[RowOperand], temp_f32_per_row: int,
                 body, out_cols: int | None = None) -> None:
    """Stream ``out``'s rows through SRAM; ``body(em, chunk, temps)`` emits the vector
    instructions of one chunk (the first waits on ``chunk.ready``) and returns the last
    one's token. 'row' operands are loaded once per core."""
    cols = out.cols if out_cols is None else out_cols
    for core, (r0, nrows) in enumerate(split(out.rows, len(lw.ems))):
        _stream_rows(lw, lw.ems[core], out, operands, temp_f32_per_row, body, cols, r0, nrows)


def _stream_rows(lw, em, out, operands, temp_f32_per_row, body, cols, r0, nrows) -> None:
    in_cols = [o.buf.cols if o.kind in ("full", "row") else 1 for o in operands]
    consts = {}
    for i, op in enumerate(operands):
        if op.kind == "row":
            addr = em.sram(op.buf.cols * op.buf.itemsize)
            consts[i] = (addr, em.load(op.buf.addr, addr, 1, op.buf.cols, op.buf.isa_dtype,
                                       op.buf.cols, note="row operand"))
    streamed = [i for i, o in enumerate(operands) if o.kind in ("full", "col")]
    per_row = (sum(in_cols[i] * operands[i].buf.itemsize for i in streamed) * 2
               + cols * out.itemsize * 2 + temp_f32_per_row)
    if em.sram_free < per_row:
        raise CompileError(f"{em.label}: a row of {cols} elements does not fit the "
                           f"{lw.timing.local_sram_bytes}-byte local SRAM")
    chunk = max(1, min(ROW_CHUNK_ROWS, nrows, em.sram_free // per_row))
    slots = [{i: em.sram(chunk * in_cols[i] * operands[i].buf.itemsize) for i in streamed}
             for _ in range(2)]
    outs = [em.sram(chunk * cols * out.itemsize) for _ in range(2)]
    temps = em.sram(chunk * temp_f32_per_row) if temp_f32_per_row else 0
    chunks = [(r0 + s, n) for s, n in split_fixed(nrows, chunk)]
    vec_done: list[Token | None] = []
    loads: list[Token | None] = []

    def emit_loads(i: int) -> None:
        start, n = chunks[i]
        tok = None
        after = (vec_done[i - 2],) if i >= 2 else ()  # the slot's previous reader is done
        for j in streamed:
            b, c = operands[j].buf, in_cols[j]
            if b.numel == 1:  # a scalar tensor: repeat its one element for every row
                tok = em.load(b.addr, slots[i % 2][j], n, 1, b.isa_dtype, 0, 1, after=after,
                              note=f"in{j} scalar")
                continue
            tok = em.load(b.addr + start * c * b.itemsize, slots[i % 2][j], n, c,
                          b.isa_dtype, c, after=after, note=f"in{j} rows {start}+{n}")
        loads.append(tok)

    if chunks:
        emit_loads(0)
    row_ready = max((t for _, t in consts.values()), default=None, key=lambda t: t[1])
    for i, (start, n) in enumerate(chunks):
        if i + 1 < len(chunks):
            emit_loads(i + 1)  # prefetch the next chunk before computing this one
        ins = [slots[i % 2].get(j, consts.get(j, (0,))[0]) for j in range(len(operands))]
        last = body(em, Chunk(n, ins, outs[i % 2], loads[i] or row_ready), temps)
        vec_done.append(last)
        em.store(out.addr + start * cols * out.itemsize, outs[i % 2], n, cols, out.isa_dtype,
                 cols, after=(last,), note=f"out rows {start}+{n}")


def split_fixed(total: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(size, total - s)) for s in range(0, total, size)]


# ---- vector instruction helpers ----------------------------------------------------------
def vun(em: CoreEmitter, op: UnOp, dst: int, a: int, rows: int, cols: int, dtype: Dtype,
        dtype_a: Dtype, after=(), flags=Flag.NONE, a_stride: int | None = None,
        dst_stride: int | None = None) -> Token:
    return em.emit(Opcode.V_UN, (dst, a, rows, cols, cols if dst_stride is None else dst_stride,
                                 cols if a_stride is None else a_stride),
                   alu=int(op), dtype=dtype, dtype_a=dtype_a, flags=flags, after=after,
                   note=op.name.lower())


def vbin(em: CoreEmitter, op: BinOp, dst: int, a: int, b: int, rows: int, cols: int,
         dtype: Dtype, dtype_a: Dtype, dtype_b: Dtype, *, a_stride: int, b_stride: int,
         flags=Flag.NONE, imm: float = 0.0, after=(), dst_stride: int | None = None) -> Token:
    return em.emit(Opcode.V_BIN, (dst, a, b, rows, cols, cols if dst_stride is None
                                  else dst_stride, a_stride, b_stride),
                   alu=int(op), dtype=dtype, dtype_a=dtype_a, dtype_b=dtype_b, flags=flags,
                   imm=imm, after=after, note=op.name.lower())


def vred(em: CoreEmitter, op: RedOp, dst: int, a: int, rows: int, cols: int, dtype_a: Dtype,
         after=()) -> Token:
    return em.emit(Opcode.V_RED, (dst, a, rows, cols, cols), alu=int(op), dtype=F32,
                   dtype_a=dtype_a, after=after, note=f"reduce {op.name.lower()}")


# ---- kernels -------------------------------------------------------------------------------
UNARY = {"neg": UnOp.NEG, "abs": UnOp.ABS, "exp": UnOp.EXP, "log": UnOp.LOG, "sqrt": UnOp.SQRT,
         "rsqrt": UnOp.RSQRT, "reciprocal": UnOp.RECIP, "relu": UnOp.RELU, "gelu": UnOp.GELU,
         "silu": UnOp.SILU, "sigmoid": UnOp.SIGMOID, "tanh": UnOp.TANH,
         "square": UnOp.SQUARE, "cast": UnOp.COPY}
BINARY = {"add": BinOp.ADD, "sub": BinOp.SUB, "mul": BinOp.MUL, "div": BinOp.DIV,
          "maximum": BinOp.MAX, "minimum": BinOp.MIN, "gt": BinOp.GT, "ge": BinOp.GE,
          "lt": BinOp.LT, "le": BinOp.LE, "eq": BinOp.EQ}

# x ** c as a short sequence of unary ops where one exists: the machine's schedule, by name
POW_SEQUENCES = {c: tuple(UnOp[f.upper()] for f in seq) for c, seq in POW_FUNCTIONS.items()}


def out_flags(out: Buf) -> Flag:
    # integer and fp8 outputs saturate, as a quantized datapath does
    return Flag.SATURATE if out.dtype in ("int8", "fp8_e4m3", "fp8_e5m2") else Flag.NONE


def unary_kernel(lw: Lowering, node: KernelNode) -> str:
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    op = UNARY[node.op]
    flags = out_flags(out)
    if node.op == "cast" and out.dtype in ("int8", "int32"):
        flags |= Flag.ROUND_TOWARD_ZERO | Flag.SATURATE  # float -> int truncates, as torch

    def body(em, ch, _):
        return vun(em, op, ch.out, ch.ins[0], ch.rows, out.cols, out.isa_dtype, x.isa_dtype,
                   after=(ch.ready,), flags=flags)

    row_pipeline(lw, out, [RowOperand("full", x)], 0, body)
    return f"vector {node.op}"


def pow_kernel(lw: Lowering, node: KernelNode) -> str:
    """x ** c: a unary sequence for the common exponents, x * x**(c-1) for c = 3, and
    exp(c * log x) (x > 0) otherwise."""
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    c = float(node.attr("exponent"))
    cols = x.cols

    def body(em, ch, tmp):
        n = ch.rows
        if c in POW_SEQUENCES:
            seq = POW_SEQUENCES[c]
            t, src, dt = ch.ready, ch.ins[0], x.isa_dtype
            for i, op in enumerate(seq):
                last = i == len(seq) - 1
                t = vun(em, op, ch.out if last else tmp, src, n, cols,
                        out.isa_dtype if last else F32, dt, after=(t,))
                src, dt = tmp, F32
            return t
        if c == 3.0:
            t = vun(em, UnOp.SQUARE, tmp, ch.ins[0], n, cols, F32, x.isa_dtype,
                    after=(ch.ready,))
            return vbin(em, BinOp.MUL, ch.out, tmp, ch.ins[0], n, cols, out.isa_dtype, F32,
                        x.isa_dtype, a_stride=cols, b_stride=cols, after=(t,))
        t = vun(em, UnOp.LOG, tmp, ch.ins[0], n, cols, F32, x.isa_dtype, after=(ch.ready,))
        t = vbin(em, BinOp.MUL, tmp, tmp, 0, n, cols, F32, F32, F32, a_stride=cols, b_stride=0,
                 flags=Flag.B_IMM, imm=c, after=(t,))
        return vun(em, UnOp.EXP, ch.out, tmp, n, cols, out.isa_dtype, F32, after=(t,))

    row_pipeline(lw, out, [RowOperand("full", x)], 4 * cols, body)
    return f"vector pow {c:g}"


def _operand(lw: Lowering, name: str, out_shape: tuple[int, ...]) -> RowOperand:
    buf = lw.bufs[name]
    kind = classify(buf.shape, out_shape)
    if kind is None:
        return RowOperand("full", materialize_broadcast(lw, buf, out_shape))
    if kind == "scalar":
        return RowOperand("col", buf)  # one element, re-read for every row (stride 0)
    return RowOperand(kind, buf)


def binary_kernel(lw: Lowering, node: KernelNode) -> str:
    out = lw.place(node.output)
    a = _operand(lw, node.inputs[0], out.shape)
    scalar = node.attr("scalar")
    b = RowOperand("imm", imm=saturate_finite(float(scalar), out.dtype)) \
        if scalar is not None else _operand(lw, node.inputs[1], out.shape)
    op = BINARY[node.op]
    cols = out.cols

    def stride_flag(o: RowOperand, col_flag: Flag) -> tuple[int, Flag]:
        if o.kind == "full":
            return cols, Flag.NONE
        if o.kind == "row":
            return 0, Flag.NONE
        if o.kind == "col":
            return 1, col_flag
        return 0, Flag.B_IMM

    rounding = out_flags(out)
    if node.op == "div" and out.dtype in ("int8", "int32"):
        rounding |= Flag.ROUND_TOWARD_ZERO  # an integer quotient truncates, as the reference
    a_stride, fa = stride_flag(a, Flag.A_COL)
    b_stride, fb = stride_flag(b, Flag.B_COL)
    operands = [a] + ([b] if b.kind != "imm" else [])

    def body(em, ch, _):
        b_addr = ch.ins[1] if b.kind != "imm" else 0
        return vbin(em, op, ch.out, ch.ins[0], b_addr, ch.rows, cols, out.isa_dtype,
                    a.buf.isa_dtype, b.buf.isa_dtype if b.buf else F32, a_stride=a_stride,
                    b_stride=b_stride, flags=fa | fb | rounding, imm=b.imm,
                    after=(ch.ready,))

    # a 'col' operand of one element (a scalar tensor) is loaded as a 1-row chunk
    row_pipeline(lw, out, operands, 0, body)
    return f"vector {node.op} ({a.kind} x {b.kind})"


def reduce_kernel(lw: Lowering, node: KernelNode) -> str:
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    cols = x.cols
    red = RedOp.MAX if node.op == "max" else RedOp.SUM

    def body(em, ch, tmp):
        if node.op == "mean":
            t = vred(em, red, tmp, ch.ins[0], ch.rows, cols, x.isa_dtype, after=(ch.ready,))
            return vbin(em, BinOp.MUL, ch.out, tmp, 0, ch.rows, 1, out.isa_dtype, F32, F32,
                        a_stride=1, b_stride=0, flags=Flag.B_IMM, imm=1.0 / cols, after=(t,))
        t = vred(em, red, tmp, ch.ins[0], ch.rows, cols, x.isa_dtype, after=(ch.ready,))
        return vun(em, UnOp.COPY, ch.out, tmp, ch.rows, 1, out.isa_dtype, F32, after=(t,))

    row_pipeline(lw, out, [RowOperand("full", x)], 4, body, out_cols=1)
    return f"vector reduce {node.op}"


def softmax_kernel(lw: Lowering, node: KernelNode) -> str:
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    cols = x.cols

    def body(em, ch, tmp):
        n, stat, e = ch.rows, tmp, tmp + 4 * ch.rows  # stat: one f32 per row; e: rows x cols
        t = vred(em, RedOp.MAX, stat, ch.ins[0], n, cols, x.isa_dtype, after=(ch.ready,))
        t = vbin(em, BinOp.SUB, e, ch.ins[0], stat, n, cols, F32, x.isa_dtype, F32,
                 a_stride=cols, b_stride=1, flags=Flag.B_COL, after=(t,))
        t = vun(em, UnOp.EXP, e, e, n, cols, F32, F32, after=(t,))
        t = vred(em, RedOp.SUM, stat, e, n, cols, F32, after=(t,))
        t = vun(em, UnOp.RECIP, stat, stat, n, 1, F32, F32, after=(t,))
        return vbin(em, BinOp.MUL, ch.out, e, stat, n, cols, out.isa_dtype, F32, F32,
                    a_stride=cols, b_stride=1, flags=Flag.B_COL, after=(t,))

    row_pipeline(lw, out, [RowOperand("full", x)], 4 * (cols + 1), body)
    return "vector softmax (max, exp, sum, scale)"


def norm_kernel(lw: Lowering, node: KernelNode) -> str:
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    cols, eps = x.cols, float(node.attr("eps", 1e-5))
    operands = [RowOperand("full", x)] + [RowOperand("row", lw.bufs[n]) for n in node.inputs[1:]]
    layer = node.op == "layernorm"

    def body(em, ch, tmp):
        n, stat, y = ch.rows, tmp, tmp + 4 * ch.rows
        src, src_dt = ch.ins[0], x.isa_dtype
        if layer:  # subtract the mean first
            t = vred(em, RedOp.SUM, stat, src, n, cols, src_dt, after=(ch.ready,))
            t = vbin(em, BinOp.MUL, stat, stat, 0, n, 1, F32, F32, F32, a_stride=1,
                     b_stride=0, flags=Flag.B_IMM, imm=1.0 / cols, after=(t,))
            t = vbin(em, BinOp.SUB, y, src, stat, n, cols, F32, src_dt, F32, a_stride=cols,
                     b_stride=1, flags=Flag.B_COL, after=(t,))
            src, src_dt, first = y, F32, (t,)
        else:
            first = (ch.ready,)
        sq = y + 4 * n * cols if layer else y
        t = vun(em, UnOp.SQUARE, sq, src, n, cols, F32, src_dt, after=first)
        t = vred(em, RedOp.SUM, stat, sq, n, cols, F32, after=(t,))
        t = vbin(em, BinOp.MUL, stat, stat, 0, n, 1, F32, F32, F32, a_stride=1, b_stride=0,
                 flags=Flag.B_IMM, imm=1.0 / cols, after=(t,))
        t = vbin(em, BinOp.ADD, stat, stat, 0, n, 1, F32, F32, F32, a_stride=1, b_stride=0,
                 flags=Flag.B_IMM, imm=eps, after=(t,))
        t = vun(em, UnOp.RSQRT, stat, stat, n, 1, F32, F32, after=(t,))
        last_dt = out.isa_dtype if len(node.inputs) == 1 else F32
        dst = ch.out if len(node.inputs) == 1 else y
        t = vbin(em, BinOp.MUL, dst, src, stat, n, cols, last_dt, src_dt, F32, a_stride=cols,
                 b_stride=1, flags=Flag.B_COL, after=(t,))
        for k, alu in ((1, BinOp.MUL), (2, BinOp.ADD)):
            if len(node.inputs) > k:
                final = len(node.inputs) == k + 1
                w = lw.bufs[node.inputs[k]]
                t = vbin(em, alu, ch.out if final else y, y, ch.ins[k], n, cols,
                         out.isa_dtype if final else F32, F32, w.isa_dtype, a_stride=cols,
                         b_stride=0, after=(t,))
        return t

    row_pipeline(lw, out, operands, 4 * (1 + cols * (2 if layer else 1)), body)
    return f"vector {node.op}"


def quantize_kernel(lw: Lowering, node: KernelNode) -> str:
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    scale, zero = float(node.attr("scale")), float(node.attr("zero_point", 0))
    cols = x.cols

    def body(em, ch, tmp):
        t = vbin(em, BinOp.DIV, tmp, ch.ins[0], 0, ch.rows, cols, F32, x.isa_dtype, F32,
                 a_stride=cols, b_stride=0, flags=Flag.B_IMM, imm=scale, after=(ch.ready,))
        return vbin(em, BinOp.ADD, ch.out, tmp, 0, ch.rows, cols, out.isa_dtype, F32, F32,
                    a_stride=cols, b_stride=0, flags=Flag.B_IMM | Flag.SATURATE, imm=zero,
                    after=(t,))

    row_pipeline(lw, out, [RowOperand("full", x)], 4 * cols, body)
    return f"quantize to {out.dtype} (scale {scale:.4g})"


def global_avg_pool_kernel(lw: Lowering, node: KernelNode) -> str:
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    n, c, h, w = x.shape
    view = Buf(x.addr, (n * c, h * w), x.dtype)
    out_view = Buf(out.addr, (n * c, 1), out.dtype)

    def body(em, ch, tmp):
        t = vred(em, RedOp.SUM, tmp, ch.ins[0], ch.rows, h * w, x.isa_dtype, after=(ch.ready,))
        return vbin(em, BinOp.MUL, ch.out, tmp, 0, ch.rows, 1, out.isa_dtype, F32, F32,
                    a_stride=1, b_stride=0, flags=Flag.B_IMM, imm=1.0 / (h * w), after=(t,))

    row_pipeline(lw, out_view, [RowOperand("full", view)], 4, body)
    return "vector global average pool"


__all__ = ["ceil", "np"]
