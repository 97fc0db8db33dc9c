"""The chipforge core instruction set: opcodes, encoding, assembler, cycle costs."""

from chipforge.isa._cost import cycles, latency
from chipforge.isa._encode import (
    ALU_ENUM,
    INSTR_BYTES,
    AsmError,
    assemble,
    decode,
    decode_program,
    disassemble,
    encode,
    encode_program,
)
from chipforge.isa._instr import (
    FIELDS,
    NUM_SEMAPHORES,
    SPECIAL_UNOPS,
    UNIT_OF,
    BinOp,
    Dtype,
    Flag,
    Instr,
    Opcode,
    RedOp,
    Unit,
    UnOp,
)
from chipforge.isa._program import MAX_DRAM_BYTES, Program, ProgramError, TensorPlacement

__all__ = [
    "ALU_ENUM", "FIELDS", "INSTR_BYTES", "MAX_DRAM_BYTES", "NUM_SEMAPHORES", "SPECIAL_UNOPS",
    "UNIT_OF", "AsmError", "BinOp",
    "Dtype", "Flag", "Instr", "Opcode", "Program", "ProgramError", "RedOp", "TensorPlacement",
    "UnOp", "Unit", "assemble", "cycles", "decode", "decode_program", "disassemble", "encode",
    "encode_program", "latency",
]
