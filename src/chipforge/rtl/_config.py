"""Parameters of one RTL matrix core and the layout of its instruction word.

The instruction word carries the ISA's fields in the ISA's units (``sram`` in bytes,
strides in elements, ``acc`` in 32-bit words), truncated to the RTL memories' address
widths: addresses wrap modulo each memory's size.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.lib import data

from chipforge.isa import Dtype, Flag, Instr, Opcode
from chipforge.machine import CoreTiming
from chipforge.rtl._formats import MxFormat, RtlError, banks_for, check_dims, fmt_of

M_BITS = 16  # MM_MUL's m: up to 65535 rows per instruction
K_BITS = 16  # MM_OS's k: up to 65535 products per output (the PEs' sum widths assume it)


@dataclass(frozen=True)
class CoreConfig:
    """rows x cols array of ``dtype``; ``sram_words`` operand elements and ``acc_words``
    accumulator words (each a power of two, at least one word per bank)."""

    rows: int
    cols: int
    dtype: str = "int8"
    sram_words: int = 1024
    acc_words: int = 512
    fifo_depth: int = 4

    def __post_init__(self) -> None:
        check_dims(self.rows, self.cols)
        fmt_of(self.dtype)
        for name, value, least in (("sram_words", self.sram_words, self.banks),
                                   ("acc_words", self.acc_words, self.acc_banks)):
            if value < least or value & (value - 1):
                raise RtlError(f"{name} must be a power of two >= {least}, got {value}")

    @property
    def fmt(self) -> MxFormat:
        return fmt_of(self.dtype)

    @property
    def itemsize(self) -> int:
        return self.fmt.bits // 8

    @property
    def banks(self) -> int:
        """Operand SRAM banks: rows of k <= R activations and n <= C weights."""
        return banks_for(max(self.rows, self.cols))

    @property
    def acc_banks(self) -> int:
        return banks_for(self.cols)

    @property
    def sram_bits(self) -> int:
        return (self.sram_words - 1).bit_length()

    @property
    def acc_bits(self) -> int:
        return (self.acc_words - 1).bit_length()

    def layout(self) -> data.StructLayout:
        return data.StructLayout({
            "opcode": 8,
            "accumulate": 1,
            "sram": self.sram_bits + (self.itemsize - 1).bit_length(),  # bytes; MM_OS: b
            "k": K_BITS,
            "n": range(self.cols + 1),
            "m": M_BITS,
            "stride": self.sram_bits,  # MM_OS: b_stride
            "a": self.sram_bits + (self.itemsize - 1).bit_length(),  # MM_OS's A, bytes
            "a_stride": self.sram_bits,
            "acc": self.acc_bits,
            "acc_stride": self.acc_bits,
        })

    def timing(self) -> CoreTiming:
        """The ISA timing of this array: one MAC per PE per cycle for its dtype (p = 1), so
        C_d = cols and no slowdown (docs/rtl.md: packing and paired cells are not RTL)."""
        return CoreTiming(clock_hz=1e9, cores=1, rows=self.rows, cols=self.cols,
                          macs_per_cycle={self.dtype: self.rows * self.cols}, lanes=1,
                          special_lanes=1, dma_bytes_per_cycle=1.0, dram_latency_cycles=0,
                          local_sram_bytes=self.sram_words * self.itemsize)

    def isa_dtype(self) -> Dtype:
        return Dtype.parse(self.dtype)


def payload(cfg: CoreConfig, ins: Instr) -> dict[str, int]:
    """The RTL instruction word of an ISA MM_LW / MM_MUL / MM_OS (fields truncated to the
    widths; MM_OS's B goes in ``sram`` / ``stride``, which the core's row reader serves)."""
    a = ins.named
    word = {"opcode": int(ins.op), "accumulate": int(bool(ins.flags & Flag.ACCUMULATE))}
    if ins.op is Opcode.MM_LW:
        word |= {"sram": a["sram"], "stride": a["stride"], "k": a["k"], "n": a["n"]}
    elif ins.op is Opcode.MM_MUL:
        if a["m"] >= 1 << M_BITS:
            raise RtlError(f"MM_MUL m={a['m']}, expected < {1 << M_BITS} on the RTL")
        word |= {"sram": a["sram"], "stride": a["stride"], "k": a["k"], "m": a["m"],
                 "acc": a["acc"], "acc_stride": a["acc_stride"]}
    elif ins.op is Opcode.MM_OS:
        if a["k"] >= 1 << K_BITS:
            raise RtlError(f"MM_OS k={a['k']}, expected < {1 << K_BITS} on the RTL")
        word |= {"sram": a["b"], "stride": a["b_stride"], "a": a["a"],
                 "a_stride": a["a_stride"], "m": a["m"], "n": a["n"], "k": a["k"],
                 "acc": a["acc"], "acc_stride": a["acc_stride"]}
    else:
        raise RtlError(f"{ins.op.name} is not a matrix-unit instruction (MM_LW, MM_MUL, "
                       "MM_OS)")
    byte_mask = (1 << (cfg.sram_bits + (cfg.itemsize - 1).bit_length())) - 1
    masks = {"sram": byte_mask, "a": byte_mask, "stride": cfg.sram_words - 1,
             "a_stride": cfg.sram_words - 1, "acc": cfg.acc_words - 1,
             "acc_stride": cfg.acc_words - 1}
    return {k: v & masks.get(k, -1) for k, v in word.items()}
