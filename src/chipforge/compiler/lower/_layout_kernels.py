"""Data-movement kernels: reshape (free), permute, slice, cat, expand, embedding gather.

All of them are DMA copies DRAM -> SRAM -> DRAM of 2-D blocks (the DMA engine moves
rows x cols with a row stride, optionally transposing), split across cores.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from chipforge.compiler.lower._emit import CoreEmitter
from chipforge.compiler.lower._kernel_graph import CompileError, KernelNode
from chipforge.compiler.lower._lowering import Buf, Lowering, split
from chipforge.isa import BinOp, Flag, Opcode, UnOp


def strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return tuple(reversed(out))


class Copier:
    """Queues 2-D block copies on one core through a double-buffered SRAM staging area."""

    def __init__(self, em: CoreEmitter, itemsize: int) -> None:
        self.em, self.isz = em, itemsize
        self.cap = max(1, em.sram_free // 2 // itemsize)
        self.slots = [em.sram(self.cap * itemsize), em.sram(self.cap * itemsize)]
        self.stores: list = []

    def copy(self, src: int, dst: int, rows: int, cols: int, dtype, src_stride: int,
             dst_stride: int, transpose: bool = False) -> None:
        """Copy rows x cols (of the source; the destination gets cols x rows if transposed)."""
        step = max(1, self.cap // max(cols, 1))
        if transpose:
            step = rows if rows * cols <= self.cap else step
            if rows * cols > self.cap:
                raise CompileError(f"{self.em.label}: a {rows}x{cols} transpose does not fit "
                                   f"half the local SRAM")
        for r0 in range(0, rows, step):
            n = min(step, rows - r0)
            slot = self.slots[len(self.stores) % 2]
            free = self.stores[-2] if len(self.stores) >= 2 else None
            tok = self.em.load(src + r0 * src_stride * self.isz, slot, n, cols, dtype,
                               src_stride, n if transpose else cols, after=(free,),
                               transpose=transpose, note="copy in")
            if transpose:
                self.stores.append(self.em.store(dst, slot, cols, n, dtype, dst_stride, n,
                                                 after=(tok,), note="copy out"))
            else:
                self.stores.append(self.em.store(dst + r0 * dst_stride * self.isz, slot, n,
                                                 cols, dtype, dst_stride, cols, after=(tok,),
                                                 note="copy out"))


def _copiers(lw: Lowering, itemsize: int) -> list[Copier]:
    return [Copier(em, itemsize) for em in lw.ems]


def reshape_kernel(lw: Lowering, node: KernelNode) -> str:
    x = lw.bufs[node.inputs[0]]
    lw.alias(node.output, x, lw.graph.tensors[node.output].shape)
    return "alias (no data moved)"


def permute_kernel(lw: Lowering, node: KernelNode) -> str:
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    perm = tuple(int(p) % len(x.shape) for p in node.attr("dims"))
    nd = len(perm)
    if nd < 2 or perm[-1] == nd - 1:
        blocks, transpose = _permute_blocks(x, out, perm), False
    elif perm[-2] == nd - 1:
        blocks, transpose = _permute_blocks(x, out, perm, transposed=True), True
    else:
        raise CompileError(f"{node.output}: permute {perm} moves the last dim elsewhere than "
                           f"second-to-last; split it into two permutes")
    copiers = _copiers(lw, x.itemsize)
    for core, (s, n) in enumerate(split(len(blocks), len(copiers))):
        for src, dst, rows, cols, src_stride, dst_stride in blocks[s:s + n]:
            copiers[core].copy(src, dst, rows, cols, x.isa_dtype, src_stride, dst_stride,
                               transpose)
    return f"permute {perm}: {len(blocks)} {'transposing ' if transpose else ''}DMA blocks"


def _permute_blocks(x: Buf, out: Buf, perm, transposed: bool = False) -> list[tuple]:
    """One 2-D block per index of the output's leading dims."""
    xs, os_ = strides(x.shape), strides(out.shape)
    lead = out.shape[:-2] if len(out.shape) >= 2 else ()
    blocks = []
    for idx in product(*(range(d) for d in lead)):
        src = x.addr + sum(i * xs[perm[j]] for j, i in enumerate(idx)) * x.itemsize
        dst = out.addr + sum(i * os_[j] for j, i in enumerate(idx)) * out.itemsize
        if len(out.shape) == 1:
            blocks.append((src, dst, 1, out.shape[0], out.shape[0], out.shape[0]))
        elif transposed:  # source block: out[-1] rows (stride of that dim) x out[-2] cols
            blocks.append((src, dst, out.shape[-1], out.shape[-2], xs[perm[-1]],
                           out.shape[-1]))
        else:
            blocks.append((src, dst, out.shape[-2], out.shape[-1], xs[perm[-2]],
                           out.shape[-1]))
    return blocks


def slice_kernel(lw: Lowering, node: KernelNode) -> str:
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    dim = int(node.attr("dim")) % len(x.shape)
    start, step = int(node.attr("start", 0)), int(node.attr("step", 1))
    inner = int(np.prod(x.shape[dim + 1:], dtype=np.int64))
    outer = int(np.prod(x.shape[:dim], dtype=np.int64))
    length = out.shape[dim]
    if inner == 1 and step != 1:
        raise CompileError(f"{node.output}: a strided slice of the last dim is not supported")
    copiers = _copiers(lw, x.itemsize)
    if inner == 1:  # last dim: one 2-D block, a row segment per outer index
        for core, (s, n) in enumerate(split(outer, len(copiers))):
            copiers[core].copy(x.addr + (s * x.shape[dim] + start) * x.itemsize,
                               out.addr + s * length * out.itemsize, n, length, x.isa_dtype,
                               x.shape[dim], length)
    else:
        for core, (s, n) in enumerate(split(outer, len(copiers))):
            for o in range(s, s + n):
                copiers[core].copy(
                    x.addr + (o * x.shape[dim] + start) * inner * x.itemsize,
                    out.addr + o * length * inner * out.itemsize, length, inner, x.isa_dtype,
                    step * inner, inner)
    return f"slice dim {dim} [{start}::{step}]"


def cat_kernel(lw: Lowering, node: KernelNode) -> str:
    out = lw.place(node.output)
    dim = int(node.attr("dim")) % len(out.shape)
    inner = int(np.prod(out.shape[dim + 1:], dtype=np.int64))
    outer = int(np.prod(out.shape[:dim], dtype=np.int64))
    copiers = _copiers(lw, out.itemsize)
    offset = 0
    for name in node.inputs:
        x = lw.bufs[name]
        width = x.shape[dim] * inner
        for core, (s, n) in enumerate(split(outer, len(copiers))):
            copiers[core].copy(x.addr + s * width * x.itemsize,
                               out.addr + (s * out.shape[dim] * inner + offset) * out.itemsize,
                               n, width, x.isa_dtype, width, out.shape[dim] * inner)
        offset += width
    return f"cat along dim {dim}"


def materialize_broadcast(lw: Lowering, x: Buf, shape: tuple[int, ...]) -> Buf:
    """A DRAM copy of ``x`` broadcast to ``shape`` (numpy rules), made inside the current
    kernel before its own work."""
    out = lw.temp(tuple(shape), x.dtype)
    _expand_into(lw, x, out)
    lw.next_phase()  # every core's part must be in DRAM before any core reads it
    return out


def expand_kernel(lw: Lowering, node: KernelNode) -> str:
    x, out = lw.bufs[node.inputs[0]], lw.place(node.output)
    _expand_into(lw, x, out)
    return "expand (broadcast copy)"


def _expand_into(lw: Lowering, x: Buf, out: Buf) -> None:
    nd = len(out.shape)
    in_shape = (1,) * (nd - len(x.shape)) + tuple(x.shape)
    xs = [0 if d == 1 else s for d, s in zip(in_shape, strides(in_shape))]
    os_ = strides(out.shape)
    rows, cols = (out.shape[-2], out.shape[-1]) if nd >= 2 else (1, out.shape[-1])
    lead = out.shape[:-2] if nd >= 2 else ()
    row_stride = xs[-2] if nd >= 2 else 0
    blocks = list(product(*(range(d) for d in lead)))
    for core, (s, n) in enumerate(split(len(blocks), len(lw.ems))):
        em = lw.ems[core]
        bufs = [em.sram(rows * cols * x.itemsize) for _ in range(2)]  # double-buffered
        col = em.sram(2 * rows * x.itemsize) if xs[-1] == 0 and cols > 1 else None
        stores: list = []
        for i, idx in enumerate(blocks[s:s + n]):
            buf = bufs[i % 2]
            free = stores[-2] if len(stores) >= 2 else None  # this slot's last store is done
            src = x.addr + sum(i_ * xs[j] for j, i_ in enumerate(idx)) * x.itemsize
            dst = out.addr + sum(i_ * os_[j] for j, i_ in enumerate(idx)) * out.itemsize
            if col is None:
                tok = em.load(src, buf, rows, cols, x.isa_dtype, row_stride, cols,
                              after=(free,), note="expand in")
            else:  # the last dim is broadcast: one element per row, spread by the VEC unit
                c = col + (i % 2) * rows * x.itemsize
                t = em.load(src, c, rows, 1, x.isa_dtype, row_stride, 1, after=(free,),
                            note="expand in")
                tok = em.emit(Opcode.V_UN, (buf, c, rows, cols, cols, 1), alu=int(UnOp.COPY),
                              dtype=x.isa_dtype, dtype_a=x.isa_dtype, flags=Flag.A_COL,
                              after=(t,), note="spread")
            stores.append(em.store(dst, buf, rows, cols, x.isa_dtype, cols, cols,
                                   after=(tok,), note="expand out"))


def embedding_kernel(lw: Lowering, node: KernelNode) -> str:
    table, idx = lw.bufs[node.inputs[0]], lw.bufs[node.inputs[1]]
    out = lw.place(node.output)
    if idx.dtype != "int32":
        raise CompileError(f"{node.output}: embedding indices must be int32, got {idx.dtype}")
    v, d = table.shape
    for core, (s, n) in enumerate(split(idx.numel, len(lw.ems))):
        em = lw.ems[core]
        chunk = max(1, min(n, em.sram_free // 2 // (4 + d * table.itemsize)))
        ibuf, rbuf = em.sram(chunk * 4), em.sram(chunk * d * table.itemsize)
        last = None
        for r0 in range(s, s + n, chunk):
            m = min(chunk, s + n - r0)
            t = em.load(idx.addr + r0 * 4, ibuf, 1, m, idx.isa_dtype, m, m, after=(last,),
                        note="indices")
            g = em.emit(Opcode.DMA_GATHER, (table.addr, rbuf, ibuf, m, d, v),
                        dtype=table.isa_dtype, after=(t,), note="gather rows")
            last = em.store(out.addr + r0 * d * out.itemsize, rbuf, m, d, out.isa_dtype, d, d,
                            after=(g,), note="rows out")
    return f"embedding gather of {idx.numel} rows"


def scatter_add_kernel(lw: Lowering, node: KernelNode) -> str:
    """out[V, D] = 0; out[idx[i]] += rows[i] for i in order (duplicates accumulate). The
    read-modify-write of each row is serialized on core 0 so duplicates are exact; the
    other cores zero the output first."""
    idx, rows = lw.bufs[node.inputs[0]], lw.bufs[node.inputs[1]]
    out = lw.place(node.output)
    v, d = out.shape
    for core, (s, n) in enumerate(split(v, len(lw.ems))):
        em = lw.ems[core]
        chunk = min(n, max(1, em.sram_free // 2 // (d * out.itemsize)))
        zeros = em.sram(chunk * d * out.itemsize)
        fill = em.emit(Opcode.V_FILL, (zeros, chunk, d, d), dtype=out.isa_dtype, imm=0.0,
                       note="zeros")
        for r0 in range(s, s + n, chunk):
            em.store(out.addr + r0 * d * out.itemsize, zeros, min(chunk, s + n - r0), d,
                     out.isa_dtype, d, d, after=(fill,), note="zero rows")
    lw.next_phase()
    em = lw.ems[0]
    count = idx.numel
    ibuf = em.sram(count * 4)
    acc, g = em.sram(d * out.itemsize), em.sram(d * rows.itemsize)
    tok = em.load(idx.addr, ibuf, 1, count, idx.isa_dtype, count, count, note="indices")
    last = tok
    for i in range(count):
        t1 = em.emit(Opcode.DMA_GATHER, (out.addr, acc, ibuf + 4 * i, 1, d, v),
                     dtype=out.isa_dtype, after=(last,), note=f"row {i} in")
        t2 = em.load(rows.addr + i * d * rows.itemsize, g, 1, d, rows.isa_dtype, d, d,
                     after=(last,), note=f"grad {i}")
        t3 = em.emit(Opcode.V_BIN, (acc, acc, g, 1, d, d, d, d), alu=int(BinOp.ADD),
                     dtype=out.isa_dtype, dtype_a=out.isa_dtype, dtype_b=rows.isa_dtype,
                     after=(t1, t2), note="accumulate")
        last = em.emit(Opcode.DMA_SCATTER, (out.addr, acc, ibuf + 4 * i, 1, d, v),
                       dtype=out.isa_dtype, after=(t3,), note=f"row {i} out")
    return f"scatter-add of {count} rows into {v}x{d}"
