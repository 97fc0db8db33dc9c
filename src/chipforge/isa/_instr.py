"""The instruction set of one chipforge core.

A core has three units that run their own in-order queues: the DMA engine (DRAM <-> local
SRAM), the matrix unit (a rows x cols systolic array with an fp32/int32 accumulator SRAM)
and the vector unit (fp32 lanes over SRAM operands). One front end issues the program in
order into the three queues; instructions on different units synchronize through
semaphores: an instruction may wait until a semaphore reaches a value, and may increment
one semaphore when it completes. ``BARRIER`` synchronizes all cores.

Addresses: DRAM and SRAM addresses are in bytes; accumulator addresses are in 32-bit
words. Shapes and strides are in elements of the operand's dtype. The functional simulator
(:mod:`chipforge.sim`) is the definition of each instruction's semantics; ``docs/isa.md``
describes them in prose with their cycle cost (:mod:`chipforge.isa._cost`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field, fields

NUM_SEMAPHORES = 32
NO_SEM = 0xFF


class Unit(enum.Enum):
    DMA = "dma"
    MXU = "mxu"
    VEC = "vec"
    CTRL = "ctrl"


class Opcode(enum.IntEnum):
    NOP = 0x00
    HALT = 0x01
    BARRIER = 0x02  # wait for all earlier instructions of this core, then for every core
    DMA_LOAD = 0x10  # DRAM -> SRAM, 2-D strided
    DMA_STORE = 0x11  # SRAM -> DRAM, 2-D strided
    DMA_GATHER = 0x12  # DRAM table rows picked by int32 indices in SRAM -> SRAM
    DMA_SCATTER = 0x13  # SRAM rows -> DRAM table rows picked by int32 indices, in order
    MM_LW = 0x20  # weight-stationary: load a k x n weight tile from SRAM into the array
    MM_MUL = 0x21  # weight-stationary: stream m rows of A through it into the accumulators
    MM_OS = 0x22  # output-stationary: stream A (m x k) and B (k x n), outputs stay in place
    V_UN = 0x30  # dst = f(a)
    V_BIN = 0x31  # dst = a (op) b, b a tensor, a per-row column, a row vector or immediate
    V_RED = 0x32  # dst[r] = reduce(a[r, :])
    V_ACC = 0x33  # SRAM dst = cast(acc * imm); optionally clear the accumulators read
    V_FILL = 0x34  # dst = imm


UNIT_OF: dict[Opcode, Unit] = {
    Opcode.NOP: Unit.CTRL, Opcode.HALT: Unit.CTRL, Opcode.BARRIER: Unit.CTRL,
    Opcode.DMA_LOAD: Unit.DMA, Opcode.DMA_STORE: Unit.DMA, Opcode.DMA_GATHER: Unit.DMA,
    Opcode.DMA_SCATTER: Unit.DMA,
    Opcode.MM_LW: Unit.MXU, Opcode.MM_MUL: Unit.MXU, Opcode.MM_OS: Unit.MXU,
    Opcode.V_UN: Unit.VEC, Opcode.V_BIN: Unit.VEC, Opcode.V_RED: Unit.VEC,
    Opcode.V_ACC: Unit.VEC, Opcode.V_FILL: Unit.VEC,
}


class UnOp(enum.IntEnum):
    COPY = 0  # also a cast: the result is rounded to the destination dtype
    NEG = 1
    ABS = 2
    EXP = 3
    LOG = 4
    SQRT = 5
    RSQRT = 6
    RECIP = 7
    RELU = 8
    GELU = 9  # tanh approximation: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
    SILU = 10
    SIGMOID = 11
    TANH = 12
    SQUARE = 13


class BinOp(enum.IntEnum):
    ADD = 0
    SUB = 1
    MUL = 2
    DIV = 3
    MAX = 4
    MIN = 5
    GT = 6  # comparisons give 1.0 where true, 0.0 where false
    GE = 7
    LT = 8
    LE = 9
    EQ = 10


class RedOp(enum.IntEnum):
    SUM = 0
    MAX = 1


# transcendental unary ops run on the special-function lanes
SPECIAL_UNOPS = frozenset({UnOp.EXP, UnOp.LOG, UnOp.SQRT, UnOp.RSQRT, UnOp.RECIP, UnOp.GELU,
                           UnOp.SILU, UnOp.SIGMOID, UnOp.TANH})


class Dtype(enum.IntEnum):
    """Operand dtypes; the vector unit computes in fp32 and rounds its result."""

    FP32 = 0
    BF16 = 1
    FP16 = 2
    FP8_E4M3 = 3
    FP8_E5M2 = 4
    INT8 = 5
    INT32 = 6

    @property
    def name_str(self) -> str:
        return self.name.lower()

    @property
    def itemsize(self) -> int:
        return {0: 4, 1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 4}[int(self)]

    @classmethod
    def parse(cls, text: str) -> Dtype:
        return cls[text.upper()]


class Flag(enum.IntFlag):
    NONE = 0
    ACCUMULATE = 1  # MM_*: add into the accumulators instead of overwriting them
    SATURATE = 2  # clip to the destination's finite range instead of overflowing
    ROUND_TOWARD_ZERO = 4  # instead of round-to-nearest-even
    B_IMM = 8  # V_BIN: b is the scalar immediate
    A_COL = 16  # V_BIN/V_UN: a has one element per row (broadcast along the row)
    B_COL = 32  # V_BIN: b has one element per row
    CLEAR = 64  # V_ACC: zero the accumulators after reading them
    TRANSPOSE = 128  # DMA_LOAD: SRAM receives the cols x rows transpose of the DRAM block


# Operand fields of each opcode, in encoding order. Every field is an unsigned integer.
FIELDS: dict[Opcode, tuple[str, ...]] = {
    Opcode.NOP: (),
    Opcode.HALT: (),
    Opcode.BARRIER: ("barrier_id",),
    Opcode.DMA_LOAD: ("dram", "sram", "rows", "cols", "dram_stride", "sram_stride"),
    Opcode.DMA_STORE: ("dram", "sram", "rows", "cols", "dram_stride", "sram_stride"),
    Opcode.DMA_GATHER: ("dram", "sram", "index", "rows", "cols", "table_rows"),
    Opcode.DMA_SCATTER: ("dram", "sram", "index", "rows", "cols", "table_rows"),
    Opcode.MM_LW: ("sram", "k", "n", "stride"),
    Opcode.MM_MUL: ("acc", "sram", "m", "k", "stride", "acc_stride"),
    Opcode.MM_OS: ("acc", "a", "b", "m", "n", "k", "a_stride", "b_stride", "acc_stride"),
    Opcode.V_UN: ("dst", "a", "rows", "cols", "dst_stride", "a_stride"),
    Opcode.V_BIN: ("dst", "a", "b", "rows", "cols", "dst_stride", "a_stride", "b_stride"),
    Opcode.V_RED: ("dst", "a", "rows", "cols", "a_stride"),
    Opcode.V_ACC: ("dst", "acc", "rows", "cols", "dst_stride", "acc_stride"),
    Opcode.V_FILL: ("dst", "rows", "cols", "dst_stride"),
}
MAX_FIELDS = max(len(f) for f in FIELDS.values())


@dataclass(frozen=True)
class Instr:
    """One instruction. ``args`` holds the opcode's FIELDS in order.

    ``alu`` selects the unary, binary or reduction op; ``dtype`` is the destination (or
    the moved/multiplied data) dtype and ``dtype_a``/``dtype_b`` the sources'. ``imm`` is
    an fp32 immediate. ``wait`` = (semaphore, value): start no earlier than the semaphore
    reaching value. ``signal``: semaphore incremented on completion.
    """

    op: Opcode
    args: tuple[int, ...] = ()
    alu: int = 0
    dtype: Dtype = Dtype.FP32
    dtype_a: Dtype = Dtype.FP32
    dtype_b: Dtype = Dtype.FP32
    flags: Flag = Flag.NONE
    imm: float = 0.0
    wait: tuple[int, int] | None = None
    signal: int | None = None
    wait2: tuple[int, int] | None = None
    comment: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # the immediate is encoded as fp32: keep exactly the value the hardware sees
        imm32 = struct.unpack("<f", struct.pack("<f", self.imm))[0]
        object.__setattr__(self, "imm", float(imm32))
        names = FIELDS[self.op]
        if len(self.args) != len(names):
            raise ValueError(f"{self.op.name} takes {len(names)} fields "
                             f"({', '.join(names)}), got {len(self.args)}")
        for name, value in zip(names, self.args):
            if not isinstance(value, int) or value < 0 or value >= 1 << 48:
                raise ValueError(f"{self.op.name}.{name} must be an integer in [0, 2**48), "
                                 f"got {value!r}")
        waits = [w[0] for w in (self.wait, self.wait2) if w]
        for sem in waits + ([self.signal] if self.signal is not None else []):
            if not 0 <= sem < NUM_SEMAPHORES:
                raise ValueError(f"semaphore {sem!r} out of range 0..{NUM_SEMAPHORES - 1}")

    @property
    def waits(self) -> tuple[tuple[int, int], ...]:
        return tuple(w for w in (self.wait, self.wait2) if w)

    @property
    def unit(self) -> Unit:
        return UNIT_OF[self.op]

    def field(self, name: str) -> int:
        return self.args[FIELDS[self.op].index(name)]

    @property
    def named(self) -> dict[str, int]:
        return dict(zip(FIELDS[self.op], self.args))


def instr_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Instr))
