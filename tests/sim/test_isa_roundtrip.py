"""assemble(disassemble(i)) == i and decode(encode(i)) == i over a generated program that
uses every opcode, and a .cfp save/load round trip."""

from __future__ import annotations

import random
import struct

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
                 imm=rng.choice([0.0, 1.0, imm, float("inf"), -float("inf")]),
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
