"""Instruction emission helpers: per-core streams with semaphore tokens, and allocators.

Every DMA, MXU and VEC instruction signals its unit's semaphore, so a unit's count is the
number of its instructions completed, and (units being in order) ``count >= t`` means the
instruction that produced token ``t`` and all earlier ones on that unit are done. A
dependency is therefore a wait on (unit semaphore, producer's token); an instruction may
carry two such waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chipforge.compiler.lower._kernel_graph import CompileError
from chipforge.isa import UNIT_OF, Dtype, Flag, Instr, Opcode, Unit

SEM = {Unit.DMA: 0, Unit.MXU: 1, Unit.VEC: 2}
ALIGN = 64  # bytes: DRAM and SRAM buffers start on 64-byte boundaries

DTYPE = {d.name_str: d for d in Dtype}  # the ISA's dtypes by chipforge name


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


Token = tuple[Unit, int]  # (unit, count its semaphore reaches when the producer is done)


@dataclass
class CoreEmitter:
    core: int
    sram_bytes: int
    instrs: list[Instr] = field(default_factory=list)
    counts: dict[Unit, int] = field(default_factory=lambda: {u: 0 for u in SEM})
    _sram_top: int = 0
    label: str = ""  # the op being lowered; prefixes every comment

    # ---- SRAM: a bump allocator reset per kernel (kernels are separated by barriers) ----
    def reset_sram(self) -> None:
        self._sram_top = 0

    def sram(self, nbytes: int) -> int:
        addr = self._sram_top
        self._sram_top = align(addr + int(nbytes))
        if self._sram_top > self.sram_bytes:
            raise CompileError(f"{self.label}: needs {self._sram_top} bytes of local SRAM, "
                               f"the core has {self.sram_bytes}")
        return addr

    @property
    def sram_free(self) -> int:
        return self.sram_bytes - self._sram_top

    # ---- instructions -------------------------------------------------------------------
    def emit(self, op: Opcode, args: tuple[int, ...], *, after: tuple[Token | None, ...] = (),
             note: str = "", **kw) -> Token:
        """Append one instruction that waits for up to two tokens; returns its own token."""
        waits = [(SEM[u], t) for u, t in (a for a in after if a) if t > 0]
        # keep only the latest wait per semaphore
        latest: dict[int, int] = {}
        for sem, t in waits:
            latest[sem] = max(latest.get(sem, 0), t)
        waits = sorted(latest.items())
        if len(waits) > 2:
            raise AssertionError(f"{op.name} needs {len(waits)} waits; the ISA carries two")
        unit = UNIT_OF[op]
        signal = SEM.get(unit)
        if signal is not None:
            self.counts[unit] += 1
        comment = f"{self.label}: {note}" if note else f"{self.label}:"
        self.instrs.append(Instr(op, args, wait=waits[0] if waits else None,
                                 wait2=waits[1] if len(waits) > 1 else None,
                                 signal=signal, comment=comment, **kw))
        return (unit, self.counts[unit]) if signal is not None else (unit, 0)

    def barrier(self, barrier_id: int) -> None:
        self.instrs.append(Instr(Opcode.BARRIER, (barrier_id,), comment=f"{self.label}: end"))

    # ---- common instruction shapes ---------------------------------------------------------
    def load(self, dram: int, sram: int, rows: int, cols: int, dtype: Dtype, dram_stride: int,
             sram_stride: int | None = None, after: tuple = (), transpose: bool = False,
             note: str = "load") -> Token:
        flags = Flag.TRANSPOSE if transpose else Flag.NONE
        return self.emit(Opcode.DMA_LOAD, (dram, sram, rows, cols, dram_stride,
                                           cols if sram_stride is None else sram_stride),
                         after=after, dtype=dtype, flags=flags, note=note)

    def store(self, dram: int, sram: int, rows: int, cols: int, dtype: Dtype, dram_stride: int,
              sram_stride: int | None = None, after: tuple = (), note: str = "store") -> Token:
        return self.emit(Opcode.DMA_STORE, (dram, sram, rows, cols, dram_stride,
                                            cols if sram_stride is None else sram_stride),
                         after=after, dtype=dtype, note=note)


@dataclass
class DramAllocator:
    top: int = 0

    def alloc(self, nbytes: int) -> int:
        addr = self.top
        self.top = align(addr + max(int(nbytes), 1))
        return addr
