"""Invalid instructions, assembly lines and binaries fail with one AsmError (also a
ValueError and a ChipforgeError) whose message names the field and the value."""

from __future__ import annotations

import struct

import pytest

from chipforge.errors import ChipforgeError
from chipforge.isa import (
    INSTR_BYTES,
    AsmError,
    BinOp,
    Dtype,
    Flag,
    Instr,
    Opcode,
    RedOp,
    UnOp,
    assemble,
    decode,
    decode_program,
    disassemble,
    encode,
)

UNOPS = ("COPY=0, NEG=1, ABS=2, EXP=3, LOG=4, SQRT=5, RSQRT=6, RECIP=7, RELU=8, GELU=9, "
         "SILU=10, SIGMOID=11, TANH=12, SQUARE=13")
LOAD = (0, 0, 1, 1, 1, 1)
FILL = (0, 1, 1, 1)


def message(fn, *args, **kw) -> str:
    with pytest.raises(AsmError) as info:
        fn(*args, **kw)
    return str(info.value)


def test_asm_error_is_a_value_error_and_a_chipforge_error():
    assert issubclass(AsmError, ValueError) and issubclass(AsmError, ChipforgeError)


@pytest.mark.parametrize("kw, expected", [
    ({"wait": (0, 1 << 32)},
     "DMA_LOAD.wait must be (semaphore in 0..31, value in [0, 2**32)), got (0, 4294967296)"),
    ({"wait": (32, 0)},
     "DMA_LOAD.wait must be (semaphore in 0..31, value in [0, 2**32)), got (32, 0)"),
    ({"wait2": (3, -1)},
     "DMA_LOAD.wait2 must be (semaphore in 0..31, value in [0, 2**32)), got (3, -1)"),
    ({"wait2": (1, 2, 3)},
     "DMA_LOAD.wait2 must be (semaphore in 0..31, value in [0, 2**32)), got (1, 2, 3)"),
    ({"signal": 32}, "DMA_LOAD.signal must be None or a semaphore in 0..31, got 32"),
    ({"flags": 256}, "DMA_LOAD.flags must be a Flag combination in 0..255, got 256"),
    ({"flags": Flag(300)}, "DMA_LOAD.flags must be a Flag combination in 0..255, got 300"),
    ({"flags": -1}, "DMA_LOAD.flags must be a Flag combination in 0..255, got -1"),
    ({"alu": 1}, "DMA_LOAD.alu must be 0 (DMA_LOAD has no ALU op), got 1"),
    ({"alu": 256}, "DMA_LOAD.alu must be 0 (DMA_LOAD has no ALU op), got 256"),
    ({"dtype": 9}, "DMA_LOAD.dtype must be a Dtype (fp32, bf16, fp16, fp8_e4m3, fp8_e5m2, "
                   "int8, int32), got 9"),
    ({"dtype_b": "bf16"}, "DMA_LOAD.dtype_b must be a Dtype (fp32, bf16, fp16, fp8_e4m3, "
                          "fp8_e5m2, int8, int32), got 'bf16'"),
    ({"imm": 1e39}, "DMA_LOAD.imm must be a number within fp32's range, got 1e+39"),
    ({"imm": "1.0"}, "DMA_LOAD.imm must be a number within fp32's range, got '1.0'"),
    ({"comment": "two\nlines"}, "DMA_LOAD.comment must be one line of text (assembly is one "
                                "line per instruction), got 'two\\nlines'"),
    ({"comment": "trailing\n"}, "DMA_LOAD.comment must be one line of text (assembly is one "
                                "line per instruction), got 'trailing\\n'"),
    ({"comment": "cr\rhere"}, "DMA_LOAD.comment must be one line of text (assembly is one "
                              "line per instruction), got 'cr\\rhere'"),
])
def test_invalid_fields_name_the_field_and_value(kw, expected):
    assert message(Instr, Opcode.DMA_LOAD, LOAD, **kw) == expected


@pytest.mark.parametrize("op, alu, expected", [
    (Opcode.V_UN, 77, f"V_UN.alu must be a UnOp ({UNOPS}), got 77"),
    (Opcode.V_UN, 256, f"V_UN.alu must be a UnOp ({UNOPS}), got 256"),
    (Opcode.V_BIN, 11, "V_BIN.alu must be a BinOp (ADD=0, SUB=1, MUL=2, DIV=3, MAX=4, MIN=5, "
                       "GT=6, GE=7, LT=8, LE=9, EQ=10), got 11"),
    (Opcode.V_RED, 2, "V_RED.alu must be a RedOp (SUM=0, MAX=1), got 2"),
    (Opcode.V_ACC, 1, "V_ACC.alu must be 0 (V_ACC has no ALU op), got 1"),
    (Opcode.MM_MUL, 3, "MM_MUL.alu must be 0 (MM_MUL has no ALU op), got 3"),
])
def test_alu_must_be_a_member_of_the_opcodes_enum(op, alu, expected):
    args = (0,) * {Opcode.V_UN: 6, Opcode.V_BIN: 8, Opcode.V_RED: 5, Opcode.V_ACC: 6,
                   Opcode.MM_MUL: 6}[op]
    assert message(Instr, op, args, alu=alu) == expected


def test_valid_edges_are_accepted():
    i = Instr(Opcode.DMA_LOAD, LOAD, flags=Flag.TRANSPOSE, wait=(31, (1 << 32) - 1),
              wait2=(0, 0), signal=31, comment="x: the last byte of flags is TRANSPOSE")
    assert int(i.flags) == 128 and decode(encode(i)) == i and assemble(disassemble(i)) == i
    full = Instr(Opcode.V_BIN, (0,) * 8, alu=int(BinOp.EQ), flags=255)
    assert int(full.flags) == 255 and decode(encode(full)) == full
    assert Instr(Opcode.V_RED, (0,) * 5, alu=RedOp.MAX).alu == 1
    assert Instr(Opcode.V_UN, (0,) * 6, alu=UnOp.SQUARE, dtype=1).dtype is Dtype.BF16


def test_operand_count_range_and_opcode():
    assert message(Instr, Opcode.V_FILL, (0, 1, 1)) == \
        "V_FILL takes 4 fields (dst, rows, cols, dst_stride), got 3"
    assert message(Instr, Opcode.V_FILL, (0, 1, 1 << 48, 1)) == \
        "V_FILL.cols must be an integer in [0, 2**48), got 281474976710656"
    assert message(Instr, Opcode.V_FILL, (0, 1, -1, 1)) == \
        "V_FILL.cols must be an integer in [0, 2**48), got -1"
    assert message(Instr, 0x99) == ("op must be an Opcode (NOP, HALT, BARRIER, DMA_LOAD, "
                                    "DMA_STORE, DMA_GATHER, DMA_SCATTER, MM_LW, MM_MUL, MM_OS, "
                                    "V_UN, V_BIN, V_RED, V_ACC, V_FILL), got 153")


# ---- assembly -------------------------------------------------------------------------------


def test_assembly_errors():
    line = "V_FILL dst=0 rows=1 cols=281474976710656 dst_stride=1"
    assert message(assemble, line) == ("V_FILL.cols must be an integer in [0, 2**48), got "
                                       f"281474976710656 in {line!r}")
    line = "DMA_LOAD dram=0 sram=0 rows=1 cols=1 dram_stride=1 sram_stride=1 wait=0:4294967296"
    assert message(assemble, line) == (
        "DMA_LOAD.wait must be (semaphore in 0..31, value in [0, 2**32)), got "
        f"(0, 4294967296) in {line!r}")
    line = "V_FILL dst=0 rows=1 cols=1 dst_stride=1 imm=1e39"
    assert message(assemble, line) == \
        f"V_FILL.imm must be a number within fp32's range, got 1e+39 in {line!r}"
    for bad in ("nan:0x3f800000", "nan:12", "one"):  # 0x3f800000 is 1.0, not a NaN
        line = f"V_FILL dst=0 rows=1 cols=1 dst_stride=1 imm={bad}"
        assert message(assemble, line) == f"bad value 'imm={bad}' in {line!r}"
    names = ", ".join(op.name for op in UnOp)
    assert message(assemble, "V_UN.FOO dst=0 a=0 rows=1 cols=1 dst_stride=1 a_stride=1") == \
        f"V_UN needs an ALU suffix, one of {names}; got 'FOO'"


# ---- binary ---------------------------------------------------------------------------------


def blob_of(instr: Instr, **patch: int) -> bytes:
    """``instr``'s encoding with bytes (offset -> value) or u64 fields overwritten."""
    raw = bytearray(encode(instr))
    for key, value in patch.items():
        kind, offset = key.split("_")
        if kind == "b":
            raw[int(offset)] = value
        elif kind == "u32":
            struct.pack_into("<I", raw, int(offset), value)
        else:
            struct.pack_into("<Q", raw, 24 + 8 * int(offset), value)
    return bytes(raw)


FILL_I = Instr(Opcode.V_FILL, FILL)


@pytest.mark.parametrize("patch, expected", [
    ({"b_0": 0x99}, "unknown opcode 0x99"),
    ({"b_1": 3}, "V_FILL.alu must be 0 (V_FILL has no ALU op), got 3"),
    ({"b_2": 7}, "V_FILL.dtype must be a Dtype (fp32, bf16, fp16, fp8_e4m3, fp8_e5m2, int8, "
                 "int32), got 7"),
    ({"b_6": 40}, "V_FILL.wait must be (semaphore in 0..31, value in [0, 2**32)), "
                  "got (40, 0)"),
    ({"b_7": 32}, "V_FILL.signal must be None or a semaphore in 0..31, got 32"),
    ({"u32_8": 5}, "V_FILL.wait: value 5 with no semaphore (0xFF), expected value 0"),
    ({"u32_20": 9}, "V_FILL.wait2: value 9 with no semaphore (0xFF), expected value 0"),
    ({"b_18": 1}, "V_FILL: padding bytes 17..19 are 000100, expected zeros"),
    ({"q_4": 7}, "V_FILL has 4 fields; unused operand field 4 is 7, expected 0"),
    ({"q_1": 1 << 48}, "V_FILL.rows must be an integer in [0, 2**48), got 281474976710656"),
])
def test_decode_rejects_what_encode_never_writes(patch, expected):
    assert message(decode, blob_of(FILL_I, **patch)) == expected


def test_decode_lengths_and_program_positions():
    assert message(decode, b"\0" * 10) == f"an instruction is {INSTR_BYTES} bytes, got 10"
    good = encode(FILL_I)
    assert message(decode_program, good + b"\0" * 5) == (
        f"program of {INSTR_BYTES + 5} bytes is not a whole number of "
        f"{INSTR_BYTES}-byte instructions")
    assert message(decode_program, good + blob_of(FILL_I, b_7=32)) == (
        f"instruction 1 (byte {INSTR_BYTES}): V_FILL.signal must be None or a semaphore in "
        f"0..31, got 32")
