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
from dataclasses import dataclass, field, fields, replace

from chipforge.errors import ChipforgeError
from chipforge.machine import SPECIAL_FUNCTIONS
from chipforge.numerics import np_dtype

NUM_SEMAPHORES = 32
NO_SEM = 0xFF


class Unit(enum.Enum):
    DMA = "dma"
    MXU = "mxu"
    VEC = "vec"
    CTRL = "ctrl"

    # members are singletons compared by identity: object's C hash agrees with that, where
    # Enum's hashes the name in Python (the emitter looks units up ~5 times an instruction)
    __hash__ = object.__hash__


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


# transcendental unary ops run on the special-function lanes (the machine's schedule names
# them by function)
SPECIAL_UNOPS = frozenset(u for u in UnOp if u.name.lower() in SPECIAL_FUNCTIONS)


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
        return _ITEMSIZE[self]

    @classmethod
    def parse(cls, text: str) -> Dtype:
        return cls[text.upper()]


_ITEMSIZE = {d: np_dtype(d.name_str).itemsize for d in Dtype}


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


class AsmError(ChipforgeError, ValueError):
    """An instruction, assembly line or binary that cannot be read or is not valid."""


ALU_ENUM: dict[Opcode, type[enum.IntEnum]] = {Opcode.V_UN: UnOp, Opcode.V_BIN: BinOp,
                                              Opcode.V_RED: RedOp}
CANONICAL_NAN_BITS = 0x7FC00000  # the quiet NaN float("nan") encodes to


def f32_bits(value: float) -> int:
    """The fp32 bit pattern of ``value`` (rounded to fp32; OverflowError past its range)."""
    return _U32.unpack(_F32.pack(value))[0]


def f32_value(bits: int) -> float:
    """The fp32 number with bit pattern ``bits`` (a signalling NaN comes back quiet)."""
    return _F32.unpack(_U32.pack(bits))[0]


def _semaphore_ok(value: object) -> bool:
    return isinstance(value, int) and 0 <= value < NUM_SEMAPHORES


_F32, _U32 = struct.Struct("<f"), struct.Struct("<I")
_put = object.__setattr__  # Instr is frozen: __post_init__ normalizes its own fields
# per opcode value: (operand field names, ALU enum or None)
_OP_INFO: list[tuple[tuple[str, ...], type[enum.IntEnum] | None] | None] = [None] * 256
for _op in Opcode:
    _OP_INFO[_op] = (FIELDS[_op], ALU_ENUM.get(_op))


def _fail(op: Opcode, name: str, expected: str, value: object) -> AsmError:
    if isinstance(value, enum.Enum) and isinstance(value, int):
        value = int(value)  # 300, not <Flag.ACCUMULATE|...: 300>
    return AsmError(f"{op.name}.{name} must be {expected}, got {value!r}")


@dataclass(frozen=True, eq=False)
class Instr:
    """One instruction. ``args`` holds the opcode's FIELDS in order.

    ``alu`` selects the unary, binary or reduction op; ``dtype`` is the destination (or
    the moved/multiplied data) dtype and ``dtype_a``/``dtype_b`` the sources'. ``imm`` is
    an fp32 immediate. ``wait`` = (semaphore, value): start no earlier than the semaphore
    reaching value. ``signal``: semaphore incremented on completion.

    Every field is checked on construction (an :class:`AsmError`, also a ``ValueError``,
    naming the field and the value). Instructions compare and hash by their encoding:
    ``imm`` by its fp32 bits (:attr:`imm_bits`), so ``-0.0`` differs from ``0.0`` and a NaN
    equals the same NaN; ``comment`` is not compared.
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
    comment: str = ""
    # the immediate's fp32 bit pattern, derived from ``imm`` (exact for every NaN payload
    # when the instruction was decoded from a binary)
    _imm_bits: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        op = self.op
        if type(op) is not Opcode:
            try:
                op = Opcode(op)
            except ValueError:
                raise AsmError(f"op must be an Opcode ({', '.join(o.name for o in Opcode)}), "
                               f"got {self.op!r}") from None
            _put(self, "op", op)
        # list indexing by the opcode's value: a dict keyed by the enum would call
        # Enum.__hash__, in Python, once per lookup (a compiled model builds ~10**5 Instrs)
        names, enum_ = _OP_INFO[op]
        args = self.args
        if type(args) is not tuple:
            if not isinstance(args, list):
                raise AsmError(f"{op.name} takes {len(names)} fields "
                               f"({', '.join(names) or 'none'}), got {args!r}")
            args = tuple(args)
            _put(self, "args", args)
        if len(args) != len(names):
            raise AsmError(f"{op.name} takes {len(names)} fields "
                           f"({', '.join(names) or 'none'}), got {len(args)}")
        for name, value in zip(names, args):
            if not isinstance(value, int) or value < 0 or value >= 1 << 48:
                raise _fail(op, name, "an integer in [0, 2**48)", value)
        alu = self.alu
        if enum_ is not None:
            if not (isinstance(alu, int) and alu in enum_._value2member_map_):
                raise _fail(op, "alu", f"a {enum_.__name__} ("
                            f"{', '.join(f'{a.name}={a.value}' for a in enum_)})", alu)
        elif not (isinstance(alu, int) and alu == 0):
            raise _fail(op, "alu", f"0 ({op.name} has no ALU op)", alu)
        if type(alu) is not int:
            _put(self, "alu", int(alu))
        if not (type(self.dtype) is type(self.dtype_a) is type(self.dtype_b) is Dtype):
            self._dtypes(op)
        flags = self.flags
        if not isinstance(flags, int) or not 0 <= int(flags) <= 255:
            raise _fail(op, "flags", "a Flag combination in 0..255", flags)
        if type(flags) is not Flag:
            _put(self, "flags", Flag(int(flags)))
        try:
            bits = _U32.unpack(_F32.pack(self.imm))[0]  # f32_bits
        except (OverflowError, TypeError, struct.error):
            raise _fail(op, "imm", "a number within fp32's range", self.imm) from None
        # the immediate is encoded as fp32: keep exactly the value the hardware sees
        _put(self, "imm", _F32.unpack(_U32.pack(bits))[0])  # f32_value
        _put(self, "_imm_bits", bits)
        for name in ("wait", "wait2"):
            value = getattr(self, name)
            if value is None:
                continue
            if not (isinstance(value, tuple | list) and len(value) == 2
                    and _semaphore_ok(value[0]) and isinstance(value[1], int)
                    and 0 <= value[1] < 1 << 32):
                raise _fail(op, name, f"(semaphore in 0..{NUM_SEMAPHORES - 1}, value in "
                            f"[0, 2**32))", value)
            if type(value) is not tuple or type(value[0]) is not int \
                    or type(value[1]) is not int:
                _put(self, name, (int(value[0]), int(value[1])))
        if self.signal is not None and not _semaphore_ok(self.signal):
            raise _fail(op, "signal", f"None or a semaphore in 0..{NUM_SEMAPHORES - 1}",
                        self.signal)
        comment = self.comment
        # a printable string has no line boundary (every one splitlines knows is a control
        # or separator character); the splitlines test decides the rest
        if not isinstance(comment, str) or not (
                comment.isprintable() or comment.splitlines() in ([], [comment])):
            raise _fail(op, "comment", "one line of text (assembly is one line per "
                        "instruction)", comment)

    def _dtypes(self, op: Opcode) -> None:
        """dtype, dtype_a and dtype_b as Dtype members (AsmError for an unknown value)."""
        for name in ("dtype", "dtype_a", "dtype_b"):
            value = getattr(self, name)
            if type(value) is Dtype:
                continue
            try:
                _put(self, name, Dtype(value))
            except ValueError:
                raise _fail(op, name, f"a Dtype ({', '.join(d.name_str for d in Dtype)})",
                            value) from None

    @property
    def imm_bits(self) -> int:
        """The immediate's fp32 bit pattern, as encoded."""
        return self._imm_bits

    def _key(self) -> tuple:
        return (self.op, self.args, self.alu, self.dtype, self.dtype_a, self.dtype_b,
                int(self.flags), self._imm_bits, self.wait, self.signal, self.wait2)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def with_imm_bits(self, bits: int) -> Instr:
        """This instruction with the immediate given as an fp32 bit pattern (a signalling
        NaN's payload kept exactly)."""
        if not isinstance(bits, int) or not 0 <= bits < 1 << 32:
            raise AsmError(f"{self.op.name}.imm bits must be in [0, 2**32), got {bits!r}")
        out = replace(self, imm=f32_value(bits))
        object.__setattr__(out, "_imm_bits", bits)
        return out

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
    return tuple(f.name for f in fields(Instr) if f.init)
