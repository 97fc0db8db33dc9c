"""Convolution and max pooling on the systolic array and the DMA engine.

conv2d runs as an implicit GEMM: the input goes to NHWC (a transposing copy), the DMA
engine gathers the patch matrix [N*OH*OW, kh*kw*C] (each kernel offset is one strided
2-D block per output row; padding is a zero fill), the matmul kernel multiplies it by the
weights rearranged at compile time to [kh*kw*C, O], and the result goes back to NCHW.
max_pool2d gathers the same windows and takes their running max on the vector unit.
"""

from __future__ import annotations

from math import ceil

import numpy as np

from chipforge.compiler.lower._emit import CoreEmitter
from chipforge.compiler.lower._kernel_graph import CompileError, KernelNode
from chipforge.compiler.lower._layout_kernels import permute_kernel
from chipforge.compiler.lower._lowering import Buf, Lowering, split
from chipforge.compiler.lower._matmul_kernel import matmul_kernel
from chipforge.isa import BinOp, Flag, Opcode


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _to_nhwc(lw: Lowering, x: Buf, label: str) -> Buf:
    n, c, h, w = x.shape
    lw.bufs[label + ".x"] = Buf(x.addr, (n, c, h * w), x.dtype)
    lw.bufs[label + ".nhwc"] = lw.temp((n, h * w, c), x.dtype)
    permute_kernel(lw, KernelNode("permute", (label + ".x",), label + ".nhwc",
                             (("dims", (0, 2, 1)),)))
    lw.next_phase()
    return Buf(lw.bufs[label + ".nhwc"].addr, (n, h, w, c), x.dtype)


def _windows(em: CoreEmitter, x: Buf, block: int, n: int, oh: int, ow_n: int, k, s, p,
             after, place) -> list:
    """DMA each kernel offset's valid input rows for output row (n, oh); ``place(ki, kj,
    lo)`` gives the SRAM address and row stride for the rows starting at output col lo."""
    _, h, w, c = x.shape
    toks = []
    for ki in range(k[0]):
        ih = oh * s[0] + ki - p[0]
        if not 0 <= ih < h:
            continue
        for kj in range(k[1]):
            lo = max(0, ceil((p[1] - kj) / s[1]))
            hi = min(ow_n - 1, (w - 1 + p[1] - kj) // s[1])
            if hi < lo:
                continue
            src = x.addr + ((n * h + ih) * w + lo * s[1] + kj - p[1]) * c * x.itemsize
            addr, stride = place(ki, kj, lo)
            toks.append((ki, kj, lo, hi, em.load(src, addr, hi - lo + 1, c, x.isa_dtype,
                                                 s[1] * c, stride, after=after,
                                                 note=f"window {ki},{kj}")))
    return toks


def conv2d_kernel(lw: Lowering, node: KernelNode) -> str:
    x, wname = lw.bufs[node.inputs[0]], node.inputs[1]
    weight = lw.graph.constants.get(wname)
    if weight is None:
        raise CompileError(f"{node.output}: conv2d weights must be constants")
    if int(node.attr("groups", 1)) != 1:
        raise CompileError(f"{node.output}: grouped convolution is not supported yet")
    s, p = _pair(node.attr("stride", 1)), _pair(node.attr("padding", 0))
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    out = lw.place(node.output)
    oh, ow = out.shape[2], out.shape[3]
    kdim = kh * kw * c
    label = node.output
    xn = _to_nhwc(lw, x, label)
    patches = lw.temp((n * oh * ow, kdim), x.dtype)
    for core, (r0, cnt) in enumerate(split(n * oh, len(lw.ems))):
        em = lw.ems[core]
        blocks = [em.sram(ow * kdim * x.itemsize) for _ in range(2)]
        stores: list = []
        for i, row in enumerate(range(r0, r0 + cnt)):
            b = blocks[i % 2]
            free = stores[-2] if len(stores) >= 2 else None
            fill = em.emit(Opcode.V_FILL, (b, ow, kdim, kdim), dtype=x.isa_dtype, imm=0.0,
                           after=(free,), note="zero padding")
            toks = _windows(em, xn, b, row // oh, row % oh, ow, (kh, kw), s, p, (fill,),
                            lambda ki, kj, lo, b=b: (b + (lo * kdim + (ki * kw + kj) * c)
                                                     * x.itemsize, kdim))
            last = toks[-1][-1] if toks else fill
            stores.append(em.store(patches.addr + row * ow * kdim * x.itemsize, b, ow, kdim,
                                   x.isa_dtype, kdim, kdim, after=(last, fill),
                                   note="patch rows"))
    lw.next_phase()
    wmat = np.transpose(np.asarray(weight, np.float32), (2, 3, 1, 0)).reshape(kdim, o)
    lw.bufs[label + ".patches"] = patches
    lw.constant(label + ".w", wmat, x.dtype)
    lw.bufs[label + ".y"] = lw.temp((n, oh * ow, o), out.dtype)
    mapping = matmul_kernel(lw, KernelNode("matmul", (label + ".patches", label + ".w"),
                                      label + ".y"))
    lw.next_phase()
    lw.bufs[label + ".nchw"] = Buf(out.addr, (n, o, oh * ow), out.dtype)
    permute_kernel(lw, KernelNode("permute", (label + ".y",), label + ".nchw",
                             (("dims", (0, 2, 1)),)))
    return f"implicit GEMM {n * oh * ow}x{o}x{kdim}: {mapping}"


def max_pool2d_kernel(lw: Lowering, node: KernelNode) -> str:
    x = lw.bufs[node.inputs[0]]
    k = _pair(node.attr("kernel"))
    s = _pair(node.attr("stride", k))
    p = _pair(node.attr("padding", 0))
    n, c, h, w = x.shape
    out = lw.place(node.output)
    oh, ow = out.shape[2], out.shape[3]
    label = node.output
    xn = _to_nhwc(lw, x, label)
    y = lw.temp((n, oh * ow, c), x.dtype)
    for core, (r0, cnt) in enumerate(split(n * oh, len(lw.ems))):
        em = lw.ems[core]
        accs = [em.sram(ow * c * x.itemsize) for _ in range(2)]
        wins = [em.sram(ow * c * x.itemsize) for _ in range(k[0] * k[1])]
        stores: list = []
        last_max = None
        for i, row in enumerate(range(r0, r0 + cnt)):
            acc = accs[i % 2]
            free = stores[-2] if len(stores) >= 2 else None
            fill = em.emit(Opcode.V_FILL, (acc, ow, c, c), dtype=x.isa_dtype,
                           imm=float("-inf"), after=(free,), note="-inf padding")
            # window buffers were last read by the previous row's max ops
            toks = _windows(em, xn, acc, row // oh, row % oh, ow, k, s, p, (last_max,),
                            lambda ki, kj, lo, wins=wins: (wins[ki * k[1] + kj], c))
            t = fill
            for ki, kj, lo, hi, tok in toks:
                dst = acc + lo * c * x.itemsize
                t = em.emit(Opcode.V_BIN, (dst, dst, wins[ki * k[1] + kj], hi - lo + 1, c, c,
                                           c, c), alu=int(BinOp.MAX), dtype=x.isa_dtype,
                            dtype_a=x.isa_dtype, dtype_b=x.isa_dtype, after=(tok, t),
                            flags=Flag.NONE, note="max")
            last_max = t
            stores.append(em.store(y.addr + row * ow * c * x.itemsize, acc, ow, c,
                                   x.isa_dtype, c, c, after=(t,), note="pooled row"))
    lw.next_phase()
    lw.bufs[label + ".y"] = y
    lw.bufs[label + ".nchw"] = Buf(out.addr, (n, c, oh * ow), out.dtype)
    permute_kernel(lw, KernelNode("permute", (label + ".y",), label + ".nchw",
                             (("dims", (0, 2, 1)),)))
    return f"max pool {k} stride {s} via NHWC windows"
