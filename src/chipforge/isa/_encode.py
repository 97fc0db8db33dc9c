"""Binary encoding, assembler and disassembler. ``decode(encode(i)) == i`` and
``assemble(disassemble(i)) == i`` for every instruction (comments aside).

Each instruction is INSTR_BYTES long, little-endian:

====== ===== =========================================================
offset bytes  field
====== ===== =========================================================
0      1      opcode
1      1      alu (UnOp / BinOp / RedOp)
2      3      dtype, dtype_a, dtype_b
5      1      flags
6      1      wait semaphore (0xFF: none)
7      1      signal semaphore (0xFF: none)
8      4      wait value (u32)
12     4      immediate (f32 bit pattern, kept exactly: -0.0 and NaN payloads included)
16     1      second wait semaphore (0xFF: none), then 3 bytes padding
20     4      second wait value (u32)
24     72     up to 9 operand fields (u64 each, unused ones zero)
====== ===== =========================================================

Decoding is strict so that ``encode(decode(blob)) == blob``: padding, unused operand
fields and the value of an absent wait must be zero.
"""

from __future__ import annotations

import struct

from chipforge.isa._instr import (
    ALU_ENUM,
    CANONICAL_NAN_BITS,
    FIELDS,
    MAX_FIELDS,
    NO_SEM,
    AsmError,
    Dtype,
    Flag,
    Instr,
    Opcode,
    f32_value,
)

# the 3 padding bytes after the second wait semaphore are read (as B B B) to check them
_LAYOUT = struct.Struct(f"<BBBBBBBBIIBBBBI{MAX_FIELDS}Q")
INSTR_BYTES = _LAYOUT.size

__all__ = ["ALU_ENUM", "INSTR_BYTES", "AsmError", "assemble", "decode", "decode_program",
           "disassemble", "encode", "encode_program"]


def encode(instr: Instr) -> bytes:
    args = list(instr.args) + [0] * (MAX_FIELDS - len(instr.args))
    wait_sem, wait_val = instr.wait if instr.wait else (NO_SEM, 0)
    wait2_sem, wait2_val = instr.wait2 if instr.wait2 else (NO_SEM, 0)
    signal = NO_SEM if instr.signal is None else instr.signal
    return _LAYOUT.pack(int(instr.op), instr.alu, int(instr.dtype), int(instr.dtype_a),
                        int(instr.dtype_b), int(instr.flags), wait_sem, signal, wait_val,
                        instr.imm_bits, wait2_sem, 0, 0, 0, wait2_val, *args)


def decode(blob: bytes) -> Instr:
    """The instruction encoded in ``blob`` (exactly INSTR_BYTES); AsmError if it is not a
    valid encoding (every field is checked as :class:`Instr` checks it)."""
    if len(blob) != INSTR_BYTES:
        raise AsmError(f"an instruction is {INSTR_BYTES} bytes, got {len(blob)}")
    (op, alu, dt, dta, dtb, flags, wait_sem, signal, wait_val, imm_bits, wait2_sem,
     *rest) = _LAYOUT.unpack(blob)
    pad, wait2_val, args = rest[:3], rest[3], rest[4:]
    try:
        opcode = Opcode(op)
    except ValueError:
        raise AsmError(f"unknown opcode 0x{op:02x}") from None
    n = len(FIELDS[opcode])
    if any(pad):
        raise AsmError(f"{opcode.name}: padding bytes 17..19 are {bytes(pad).hex()}, "
                       f"expected zeros")
    if any(args[n:]):
        j = next(j for j in range(n, MAX_FIELDS) if args[j])
        raise AsmError(f"{opcode.name} has {n} fields; unused operand field {j} is "
                       f"{args[j]}, expected 0")
    for name, sem, val in (("wait", wait_sem, wait_val), ("wait2", wait2_sem, wait2_val)):
        if sem == NO_SEM and val:
            raise AsmError(f"{opcode.name}.{name}: value {val} with no semaphore (0xFF), "
                           f"expected value 0")
    instr = Instr(opcode, tuple(args[:n]), alu, dt, dta, dtb, flags, f32_value(imm_bits),
                  None if wait_sem == NO_SEM else (wait_sem, wait_val),
                  None if signal == NO_SEM else signal,
                  None if wait2_sem == NO_SEM else (wait2_sem, wait2_val))
    # only a signalling NaN's bits differ from those of the (quiet) float it reads as
    return instr if instr.imm_bits == imm_bits else instr.with_imm_bits(imm_bits)


def encode_program(instrs: list[Instr] | tuple[Instr, ...]) -> bytes:
    return b"".join(encode(i) for i in instrs)


def decode_program(blob: bytes) -> list[Instr]:
    if len(blob) % INSTR_BYTES:
        raise AsmError(f"program of {len(blob)} bytes is not a whole number of "
                       f"{INSTR_BYTES}-byte instructions")
    out = []
    for pc, start in enumerate(range(0, len(blob), INSTR_BYTES)):
        try:
            out.append(decode(blob[start:start + INSTR_BYTES]))
        except AsmError as exc:
            raise AsmError(f"instruction {pc} (byte {start}): {exc}") from None
    return out


def disassemble(instr: Instr) -> str:
    """One line: ``MNEMONIC[.ALU] field=value ... [dtype=..] [flags=A|B] [wait=s:v] ...``."""
    head = instr.op.name
    if instr.op in ALU_ENUM:
        head += "." + ALU_ENUM[instr.op](instr.alu).name
    parts = [head] + [f"{k}={v}" for k, v in instr.named.items()]
    defaults = Instr(instr.op, instr.args)
    for name in ("dtype", "dtype_a", "dtype_b"):
        value = getattr(instr, name)
        if value != getattr(defaults, name):
            parts.append(f"{name}={value.name.lower()}")
    if instr.flags:
        parts.append("flags=" + "|".join(f.name for f in Flag if f and f in instr.flags))
    if instr.imm_bits:  # -0.0 included
        parts.append(f"imm={_imm_text(instr)}")
    if instr.wait:
        parts.append(f"wait={instr.wait[0]}:{instr.wait[1]}")
    if instr.wait2:
        parts.append(f"wait2={instr.wait2[0]}:{instr.wait2[1]}")
    if instr.signal is not None:
        parts.append(f"signal={instr.signal}")
    text = " ".join(parts)
    return f"{text}  ; {instr.comment}" if instr.comment else text


def _imm_text(instr: Instr) -> str:
    """``repr`` of the immediate; a NaN is ``nan``, or ``nan:0xBITS`` for any NaN other
    than the canonical quiet one, so that its bits survive assembly."""
    if instr.imm != instr.imm:
        bits = instr.imm_bits
        return "nan" if bits == CANONICAL_NAN_BITS else f"nan:0x{bits:08x}"
    return repr(instr.imm)


def _parse_imm(value: str) -> tuple[float, int | None]:
    """An immediate as written by :func:`_imm_text` (or any Python float literal): the
    value, and the exact fp32 bits where given (``nan:0xBITS``)."""
    head, sep, bits = value.partition(":")
    if sep:
        if head.lower() != "nan" or not bits.lower().startswith("0x"):
            raise ValueError(value)
        code = int(bits, 16)
        if not 0 <= code < 1 << 32 or (code >> 23) & 0xFF != 0xFF or not code & 0x7FFFFF:
            raise ValueError(value)
        return float("nan"), code
    return float(value), None


def assemble(line: str) -> Instr:
    """Read one line written by :func:`disassemble` (``;`` starts a comment)."""
    code, _, comment = line.partition(";")
    words = code.split()
    if not words:
        raise AsmError(f"empty assembly line {line!r}")
    mnemonic, _, alu_name = words[0].partition(".")
    try:
        op = Opcode[mnemonic]
    except KeyError:
        raise AsmError(f"unknown mnemonic {mnemonic!r}; expected one of "
                       f"{', '.join(o.name for o in Opcode)}") from None
    alu = 0
    if op in ALU_ENUM:
        try:
            alu = int(ALU_ENUM[op][alu_name])
        except KeyError:
            raise AsmError(f"{mnemonic} needs an ALU suffix, one of "
                           f"{', '.join(a.name for a in ALU_ENUM[op])}; got {alu_name!r}") \
                from None
    kw: dict = {}
    imm_bits = None
    values: dict[str, int] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise AsmError(f"expected key=value, got {word!r} in {line!r}")
        try:
            if key in FIELDS[op]:
                values[key] = int(value)
            elif key in ("dtype", "dtype_a", "dtype_b"):
                kw[key] = Dtype.parse(value)
            elif key == "flags":
                flag = Flag.NONE
                for name in value.split("|"):
                    flag |= Flag[name]
                kw["flags"] = flag
            elif key == "imm":
                kw["imm"], imm_bits = _parse_imm(value)
            elif key in ("wait", "wait2"):
                sem, val = value.split(":")
                kw[key] = (int(sem), int(val))
            elif key == "signal":
                kw["signal"] = int(value)
            else:
                raise AsmError(f"{op.name} has no field {key!r}; fields: "
                               f"{', '.join(FIELDS[op])}")
        except (KeyError, ValueError) as exc:
            if isinstance(exc, AsmError):
                raise
            raise AsmError(f"bad value {word!r} in {line!r}") from None
    missing = [f for f in FIELDS[op] if f not in values]
    if missing:
        raise AsmError(f"{op.name} is missing field(s) {', '.join(missing)} in {line!r}")
    args = tuple(values[f] for f in FIELDS[op])
    try:
        instr = Instr(op, args, alu, comment=comment.strip(), **kw)
    except AsmError as exc:
        raise AsmError(f"{exc} in {line!r}") from None
    return instr.with_imm_bits(imm_bits) if imm_bits is not None else instr
