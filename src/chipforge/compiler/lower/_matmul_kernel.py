"""The matmul kernel: the performance engine's mapping, emitted as instructions.

The mapping (from :func:`chipforge.perf.search_matmul`, restricted to the loop order this
kernel implements: k innermost) gives the partition of (batch, m, n) across cores, the
dataflow and the SRAM tile (tm, tn, tk). Per core, for each output tile tm x tn and each
k tile: DMA the A tile (tm x tk) and B tile (tk x tn) into double-buffered SRAM, then

* weight-stationary: for each R x C' sub-tile of B (k outer), ``MM_LW`` it and ``MM_MUL``
  the tm rows of A through it into the accumulators;
* output-stationary: for each R x C' block of the output, ``MM_OS`` streams tk of A and B;

and after the last k tile read the accumulators (``V_ACC``) into SRAM in the output dtype
and DMA them out. Accumulator regions and SRAM output tiles are double-buffered too.
"""

from __future__ import annotations

from math import ceil

from chipforge.compiler.lower._emit import Token
from chipforge.compiler.lower._kernel_graph import CompileError, KernelNode
from chipforge.compiler.lower._lowering import Buf, Lowering, split
from chipforge.isa import Dtype, Flag, Opcode
from chipforge.machine import ACCUMULATOR_WORDS, DEFAULT
from chipforge.perf import search_matmul


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(size, total - s)) for s in range(0, total, size)]


def matmul_kernel(lw: Lowering, node: KernelNode) -> str:
    a, b = lw.bufs[node.inputs[0]], lw.bufs[node.inputs[1]]
    out = lw.place(node.output)
    k, n = b.shape[-2], b.shape[-1]
    if a.shape[-1] != k:
        raise CompileError(f"{node.output}: matmul inner dims differ: {a.shape} @ {b.shape}")
    if a.dtype != b.dtype:
        raise CompileError(f"{node.output}: matmul operands differ in dtype: {a.dtype} and "
                           f"{b.dtype}")
    b_batch = b.numel // (k * n)
    if b_batch == 1:  # weights shared: fold a's batch into m
        batch, m = 1, a.numel // k
    else:
        batch, m = b_batch, a.shape[-2]
        if a.numel // (m * k) != batch:
            raise CompileError(f"{node.output}: batch dims of {a.shape} and {b.shape} differ")
    cost = search_matmul(lw.chip, m, n, k, batch, a.dtype, a.itemsize, DEFAULT,
                         orders=("k",))
    pb, pm, pn = cost.partition
    tm, tn, tk = cost.tile
    acc_dtype = Dtype.INT32 if a.dtype == "int8" else Dtype.FP32
    core = 0
    for b0, nb in split(batch, pb):
        for m0, mm in split(m, pm):
            for n0, nn in split(n, pn):
                _core_matmul(lw, core, a, b, out, (b0, nb), (m0, mm), (n0, nn), k,
                             (tm, tn, tk), cost.dataflow, acc_dtype, b_batch > 1)
                core += 1
    return cost.mapping


def _core_matmul(lw: Lowering, core: int, a: Buf, b: Buf, out: Buf, brange, mrange, nrange,
                 k: int, tile, dataflow: str, acc_dtype: Dtype, batched: bool) -> None:
    em = lw.ems[core]
    t = lw.timing
    rows, cols = t.rows, t.array_cols(a.isa_dtype.name_str)
    (b0, nb), (m0, mm), (n0, nn) = brange, mrange, nrange
    tm, tn, tk = min(tile[0], mm), min(tile[1], nn), min(tile[2], k)
    if 2 * tm * tn > ACCUMULATOR_WORDS:
        raise CompileError(f"{em.label}: output tile {tm}x{tn} exceeds the accumulators")
    isz, osz = a.itemsize, out.itemsize
    a_slots = [em.sram(tm * tk * isz) for _ in range(2)]
    b_slots = [em.sram(tk * tn * isz) for _ in range(2)]
    c_slots = [em.sram(tm * tn * osz) for _ in range(2)]
    acc_regions = [0, tm * tn]
    m_total, n_total = out.shape[-2] if batched else out.numel // out.shape[-1], out.shape[-1]
    loads: list[Token] = []  # DMA token per k step (A and B loaded)
    mxu_done: list[Token] = []  # MXU token of the last MM of each k step
    vacc: list[Token] = []  # VEC token per output tile
    pending_store = None
    step = 0
    tile_idx = 0
    for bi in range(b0, b0 + nb):
        a_base = a.addr + (bi * m_total * k if batched else 0) * isz
        b_base = b.addr + (bi * k * n_total if batched else 0) * isz
        c_base = out.addr + (bi * m_total * n_total if batched else 0) * osz
        for ms, mlen in _chunks(mm, tm):
            for ns, nlen in _chunks(nn, tn):
                region = acc_regions[tile_idx % 2]
                last_mm = None
                ksteps = _chunks(k, tk)
                for kj, (ks, klen) in enumerate(ksteps):
                    slot = step % 2
                    # the slot was last read by the MMs of step - 2
                    free = (mxu_done[step - 2],) if step >= 2 else ()
                    em.load(a_base + ((m0 + ms) * k + ks) * isz, a_slots[slot], mlen, klen,
                            a.isa_dtype, k, klen, after=free, note="A tile")
                    tok = em.load(b_base + (ks * n_total + n0 + ns) * isz, b_slots[slot],
                                  klen, nlen, b.isa_dtype, n_total, nlen, after=free,
                                  note="B tile")
                    if pending_store is not None:  # store the previous tile behind the loads
                        pending_store()
                        pending_store = None
                    loads.append(tok)
                    # accumulators of this region were last read by the V_ACC of tile - 2
                    acc_free = vacc[tile_idx - 2] if tile_idx >= 2 and kj == 0 else None
                    last_mm = _mm_step(em, dataflow, a_slots[slot], b_slots[slot], region,
                                       mlen, nlen, klen, rows, cols, a.isa_dtype,
                                       accumulate=kj > 0, after=(tok, acc_free))
                    mxu_done.append(last_mm)
                    step += 1
                # read out the tile; its SRAM slot was stored two tiles ago
                c_slot = c_slots[tile_idx % 2]
                v = em.emit(Opcode.V_ACC, (c_slot, region, mlen, nlen, nlen, nlen),
                            dtype=out.isa_dtype, dtype_a=acc_dtype, imm=1.0,
                            flags=Flag.CLEAR | (Flag.SATURATE if out.dtype == "int8"
                                                else Flag.NONE),
                            after=(last_mm,), note="read accumulators")
                vacc.append(v)

                def store(v=v, c_slot=c_slot, ms=ms, ns=ns, mlen=mlen, nlen=nlen,
                          c_base=c_base):
                    em.store(c_base + ((m0 + ms) * n_total + n0 + ns) * osz, c_slot, mlen,
                             nlen, out.isa_dtype, n_total, nlen, after=(v,), note="C tile")

                pending_store = store
                tile_idx += 1
    if pending_store is not None:
        pending_store()


def _mm_step(em, dataflow: str, a_sram: int, b_sram: int, acc: int, m: int, n: int, k: int,
             rows: int, cols: int, dtype: Dtype, accumulate: bool, after) -> Token:
    """The MMs of one (tm x tk) @ (tk x tn) step into accumulator words ``acc``."""
    isz = dtype.itemsize
    tok = None
    first = True
    if dataflow == "os":
        for ms, mlen in _chunks(m, rows):
            for ns, nlen in _chunks(n, cols):
                flags = Flag.ACCUMULATE if accumulate else Flag.NONE
                tok = em.emit(Opcode.MM_OS, (acc + ms * n + ns, a_sram + ms * k * isz,
                                             b_sram + ns * isz, mlen, nlen, k, k, n, n),
                              dtype=dtype, flags=flags, after=after if first else (),
                              note="mm os")
                first = False
        return tok
    # k outer, weight columns inner: consecutive MM_MULs stream the same A rows (the
    # simulator batches those into one product, sim.CoreState.defer_mm); the array's
    # cycles do not depend on this order
    for ks, klen in _chunks(k, rows):
        for ns, nlen in _chunks(n, cols):
            em.emit(Opcode.MM_LW, (b_sram + (ks * n + ns) * isz, klen, nlen, n), dtype=dtype,
                    after=after if first else (), note="load weights")
            first = False
            flags = Flag.ACCUMULATE if (accumulate or ks > 0) else Flag.NONE
            tok = em.emit(Opcode.MM_MUL, (acc + ns, a_sram + ks * isz, m, klen, k, n),
                          dtype=dtype, flags=flags, note="mm ws")
    return tok


__all__ = ["ceil"]
