"""assemble(disassemble(i)) == i and decode(encode(i)) == i over a generated program that
uses every opcode, immediates compared by their fp32 bits (-0.0, NaN payloads), and a .cfp
save/load round trip."""

from __future__ import annotations

import dataclasses
import math
import random
import struct

import pytest

from chipforge.isa import (
    FIELDS,
    NUM_SEMAPHORES,
    BinOp,
    Dtype,
    Flag,
    Instr,
    Opcode,
    Program,
    RedOp,
    TensorPlacement,
    UnOp,
    assemble,
    decode,
    decode_program,
    disassemble,
    encode,
    encode_program,
)

ALU = {Opcode.V_UN: UnOp, Opcode.V_BIN: BinOp, Opcode.V_RED: RedOp}


def random_instr(rng: random.Random, op: Opcode) -> Instr:
    args = tuple(rng.choice([0, 1, 127, 4096, rng.randrange(1 << 48)]) for _ in FIELDS[op])
    flags = Flag.NONE
    for f in Flag:
        if f and rng.random() < 0.3:
            flags |= f
    imm = struct.unpack("<f", struct.pack("<f", rng.uniform(-1e6, 1e6)))[0]
    kw = {}
    if "wait2" in Instr.__dataclass_fields__ and rng.random() < 0.5:
        kw["wait2"] = (rng.randrange(NUM_SEMAPHORES), rng.randrange(1 << 32))
    return Instr(op, args,
                 alu=int(rng.choice(list(ALU[op]))) if op in ALU else 0,
                 dtype=rng.choice(list(Dtype)), dtype_a=rng.choice(list(Dtype)),
                 dtype_b=rng.choice(list(Dtype)), flags=flags,
                 imm=rng.choice([0.0, 1.0, imm, float("inf"), -float("inf"), -0.0,
                                 float("nan"), -float("nan")]),
                 wait=rng.choice([None, (rng.randrange(NUM_SEMAPHORES), rng.randrange(1 << 32))]),
                 signal=rng.choice([None, rng.randrange(NUM_SEMAPHORES)]),
                 comment=rng.choice(["", "gemm: tile 3", "x"]), **kw)


def generated_program(n: int = 600) -> list[Instr]:
    rng = random.Random(1)
    ops = list(Opcode)
    return [random_instr(rng, op) for op in ops] + [random_instr(rng, rng.choice(ops))
                                                    for _ in range(n)]


def test_every_opcode_round_trips_through_assembly_and_binary():
    instrs = generated_program()
    assert {i.op for i in instrs} == set(Opcode)
    for i in instrs:
        text = disassemble(i)
        again = assemble(text)
        assert again == i, text
        assert again.comment == i.comment
        assert decode(encode(i)) == i, text
        assert encode(again) == encode(i), text  # bit-exact, immediate included
    assert decode_program(encode_program(instrs)) == instrs


def test_program_file_round_trip(tmp_path):
    instrs = generated_program(50)
    prog = Program("forge-t1", [instrs, instrs[::-1]], 1 << 16,
                   {"x": TensorPlacement("x", 64, (2, 3), "bf16")}, ["x"], [],
                   {0: b"\x01\x02", 4096: bytes(range(10))}, {"note": "t"})
    back = Program.load(prog.save(tmp_path / "p.cfp"))
    assert back.cores == prog.cores and back.tensors == prog.tensors
    assert back.init == prog.init and back.dram_bytes == prog.dram_bytes
    assert back.meta == prog.meta


def _fill(imm: float = 0.0) -> Instr:
    return Instr(Opcode.V_FILL, (0, 1, 1, 1), imm=imm)


def _bits(blob: bytes) -> int:
    return struct.unpack_from("<I", blob, 12)[0]


def test_negative_zero_immediate_survives_assembly_and_binary():
    neg = _fill(-0.0)
    assert neg != _fill(0.0) and hash(neg) != hash(_fill(0.0))
    text = disassemble(neg)
    assert "imm=-0.0" in text
    again = assemble(text)
    assert again == neg and math.copysign(1.0, again.imm) == -1.0
    assert encode(again) == encode(neg) and _bits(encode(neg)) == 0x80000000
    assert decode(encode(neg)) == neg
    assert "imm" not in disassemble(_fill(0.0))  # +0.0 is the default: not printed


@pytest.mark.parametrize("bits", [0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7FFFFFFF,
                                  0x7F800001, 0xFF800001])
def test_nan_immediates_round_trip_bit_exact(bits):
    # 0x7F800001 / 0xFF800001 are signalling NaNs: a Python float cannot hold them
    i = _fill().with_imm_bits(bits)
    assert math.isnan(i.imm) and i.imm_bits == bits
    blob = encode(i)
    assert _bits(blob) == bits
    assert decode(blob) == i and encode(decode(blob)) == blob
    text = disassemble(i)
    assert assemble(text) == i and encode(assemble(text)) == blob, text
    assert i == _fill().with_imm_bits(bits) and hash(i) == hash(_fill().with_imm_bits(bits))
    assert len({i, decode(blob), assemble(text)}) == 1


def test_nan_equality_and_hash_follow_the_bits():
    a, b = _fill(float("nan")), _fill(float("nan"))
    assert a == b and hash(a) == hash(b) and disassemble(a).endswith("imm=nan")
    assert a != _fill(-float("nan"))  # the sign bit differs
    assert a != _fill().with_imm_bits(0x7FC00001)  # so does the payload
    assert decode(encode(a)) == a and assemble(disassemble(a)) == a
    assert a != "not an instruction"


def test_instr_stays_frozen_and_hashable():
    i = _fill(2.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        i.imm = 3.0  # type: ignore[misc]
    assert {i: 1}[_fill(2.5)] == 1
    assert dataclasses.replace(i, imm=-0.0).imm_bits == 0x80000000  # bits follow imm
    assert _fill(0.1).imm == struct.unpack("<f", struct.pack("<f", 0.1))[0]
