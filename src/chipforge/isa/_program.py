"""A compiled program: per-core instruction streams plus the DRAM image they run on.

Saved as a ``.cfp`` file: a zip holding ``program.json`` (chip, tensors, inputs,
outputs), ``core<i>.bin`` (encoded instructions) and ``dram.npz`` (initial DRAM segments:
weights and constants).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from chipforge.errors import ChipforgeError
from chipforge.isa._encode import INSTR_BYTES, decode_program, encode_program
from chipforge.isa._instr import Instr
from chipforge.numerics import NP_DTYPE


class ProgramError(ChipforgeError):
    """A ``.cfp`` file that cannot be read safely or is not a valid program."""


# assumption: a compiled program's DRAM image is at most a few GiB (forge-i1's largest
# example model is ~1 GB of weights); larger ones must be asked for (max_dram_bytes)
MAX_DRAM_BYTES = 4 * 2**30
MAX_CORES = 1 << 16
# program.json's meta may carry run --check's references: two sets of up to 4 Mi float32
# values, zlib + base64 (~43 MB if incompressible, compiler.runtime._check)
MAX_JSON_BYTES = 64 * 2**20
MAX_INSTRUCTIONS_PER_CORE = 1 << 24
# assumption: a compiled model runs at most ~16M instructions (the examples run 10^3-10^5);
# decoded, each is a Python object of a few hundred bytes
MAX_INSTRUCTIONS = 1 << 24
NPZ_OVERHEAD_BYTES = 2**20  # zip directory and .npy headers around the arrays
COMMENT_BYTES_PER_INSTR = 1024  # op labels kept per instruction, generous


@dataclass(frozen=True)
class TensorPlacement:
    """A tensor in DRAM: byte address, shape and dtype name (e.g. "bf16")."""

    name: str
    addr: int
    shape: tuple[int, ...]
    dtype: str


@dataclass
class Program:
    chip: str
    cores: list[list[Instr]]
    dram_bytes: int
    tensors: dict[str, TensorPlacement] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    init: dict[int, bytes] = field(default_factory=dict)  # DRAM address -> initial bytes
    meta: dict = field(default_factory=dict)
    # inputs to run the program with when none are given (``chipforge run``)
    example_inputs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def instruction_count(self) -> int:
        return sum(len(c) for c in self.cores)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        header = {"chip": self.chip, "dram_bytes": self.dram_bytes, "inputs": self.inputs,
                  "outputs": self.outputs, "meta": self.meta, "cores": len(self.cores),
                  "tensors": {n: [t.addr, list(t.shape), t.dtype]
                              for n, t in self.tensors.items()}}
        buf = io.BytesIO()
        np.savez(buf, **{f"a{addr}": np.frombuffer(data, np.uint8)
                         for addr, data in self.init.items()})
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("program.json", json.dumps(header, indent=1))
            for i, instrs in enumerate(self.cores):
                zf.writestr(f"core{i}.bin", encode_program(instrs))
            zf.writestr("dram.npz", buf.getvalue())
            ex = io.BytesIO()
            np.savez(ex, **{k: np.asarray(v) for k, v in self.example_inputs.items()})
            zf.writestr("inputs.npz", ex.getvalue())
            # the binary encoding has no comments; keep the op labels for traces and run
            zf.writestr("comments.json", json.dumps([[i.comment for i in core]
                                                     for core in self.cores]))
        return path

    @classmethod
    def load(cls, path: str | Path, *, max_dram_bytes: int = MAX_DRAM_BYTES) -> Program:
        """Read a ``.cfp`` file. Every member's decompressed size is capped against the
        program's declared DRAM before it is read (a small zip must not inflate to GBs),
        and ``program.json`` is checked field by field: any fault is one ProgramError."""
        try:
            with zipfile.ZipFile(path) as zf:
                return _read(zf, str(path), max_dram_bytes)
        except ProgramError:
            raise
        except (OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
                NotImplementedError, RuntimeError) as exc:
            raise ProgramError(f"{path}: not a chipforge program (.cfp): {exc}") from None
        except ChipforgeError as exc:  # AsmError from a corrupt instruction stream
            raise ProgramError(f"{path}: {exc}") from None


def _member(zf: zipfile.ZipFile, name: str, limit: int, where: str) -> bytes:
    """A member's bytes, refused before decompression when its declared size is over
    ``limit`` (zipfile stops at the declared size, so it bounds the memory used)."""
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise ProgramError(f"{where}: {name} inflates to {info.file_size:,} bytes; expected "
                           f"at most {limit:,} for this program (a zip bomb or a corrupt file)")
    return zf.read(info)


def _arrays(zf: zipfile.ZipFile, name: str, limit: int, where: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` member, every inner member capped too (an npz is a zip
    of its own: nested deflate multiplies the ratio)."""
    blob = _member(zf, name, limit, where)
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as inner:
            total = sum(i.file_size for i in inner.infolist())
            if total > limit:
                raise ProgramError(f"{where}: {name} holds arrays of {total:,} bytes; "
                                   f"expected at most {limit:,} for this program")
            data = np.load(io.BytesIO(blob), allow_pickle=False)
            return {k: np.asarray(data[k]) for k in data.files}
    except ProgramError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ProgramError(f"{where}: {name} is not a readable .npz of arrays: {exc}") \
            from None


def _json(zf: zipfile.ZipFile, name: str, limit: int, where: str) -> object:
    raw = _member(zf, name, limit, where)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise ProgramError(f"{where}: {name} is not UTF-8 (byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        text = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ProgramError(f"{where}: {name} is not valid JSON: {text}") from None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _header(raw: object, where: str, max_dram_bytes: int) -> dict:
    """program.json checked: types, ranges, tensors inside the DRAM, known names."""
    def bad(field_name: str, value: object, expected: str) -> ProgramError:
        return ProgramError(f"{where}: program.json: {field_name}: got {value!r:.200}; "
                            f"expected {expected}")

    if not isinstance(raw, dict):
        raise bad("<top level>", type(raw).__name__, "a mapping")
    for key in ("chip", "dram_bytes", "cores", "tensors", "inputs", "outputs"):
        if key not in raw:
            raise ProgramError(f"{where}: program.json: {key}: missing required field")
    chip = raw["chip"]
    if not isinstance(chip, str) or not 0 < len(chip) <= 4096 or "\x00" in chip:
        raise bad("chip", chip, "a catalog chip name or a spec file path")
    if not _is_int(raw["dram_bytes"], 1, max_dram_bytes):
        raise bad("dram_bytes", raw["dram_bytes"], f"an integer from 1 to {max_dram_bytes:,}")
    if not _is_int(raw["cores"], 1, MAX_CORES):
        raise bad("cores", raw["cores"], f"an integer from 1 to {MAX_CORES}")
    if not isinstance(raw["tensors"], dict):
        raise bad("tensors", raw["tensors"], "a mapping of name to [addr, shape, dtype]")
    for name, entry in raw["tensors"].items():
        _check_tensor(name, entry, raw["dram_bytes"], bad)
    for key in ("inputs", "outputs"):
        names = raw[key]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise bad(key, names, "a list of tensor names")
        for i, n in enumerate(names):
            if n not in raw["tensors"]:
                raise bad(f"{key}[{i}]", n, "a name in tensors")
    if not isinstance(raw.get("meta", {}), dict):
        raise bad("meta", raw["meta"], "a mapping")
    return raw


def _check_tensor(name: str, entry: object, dram_bytes: int, bad) -> None:
    at = f"tensors.{name}"
    if not (isinstance(entry, list) and len(entry) == 3):
        raise bad(at, entry, "[addr, shape, dtype]")
    addr, shape, dtype = entry
    if not _is_int(addr, 0, dram_bytes):
        raise bad(f"{at}[0]", addr, f"a byte address from 0 to {dram_bytes:,}")
    if not (isinstance(shape, list) and len(shape) <= 16
            and all(_is_int(d, 0, dram_bytes) for d in shape)):
        raise bad(f"{at}[1]", shape, "a shape: a list of at most 16 non-negative integers")
    if dtype not in NP_DTYPE:
        raise bad(f"{at}[2]", dtype, f"one of {', '.join(NP_DTYPE)}")
    nbytes = math.prod(shape) * NP_DTYPE[dtype].itemsize
    if addr + nbytes > dram_bytes:
        raise bad(at, entry, f"a tensor inside the {dram_bytes:,}-byte DRAM (it ends at "
                             f"byte {addr + nbytes:,})")


def _read(zf: zipfile.ZipFile, where: str, max_dram_bytes: int) -> Program:
    header = _header(_json(zf, "program.json", MAX_JSON_BYTES, where), where, max_dram_bytes)
    dram_bytes, count = header["dram_bytes"], header["cores"]
    per_core = MAX_INSTRUCTIONS_PER_CORE * INSTR_BYTES
    total = sum(zf.getinfo(f"core{i}.bin").file_size for i in range(count))
    if total > MAX_INSTRUCTIONS * INSTR_BYTES:
        raise ProgramError(f"{where}: the core streams inflate to {total:,} bytes; expected "
                           f"at most {MAX_INSTRUCTIONS:,} instructions in all "
                           f"({MAX_INSTRUCTIONS * INSTR_BYTES:,} bytes)")
    cores = [decode_program(_member(zf, f"core{i}.bin", per_core, where))
             for i in range(count)]
    # the DRAM image and the example inputs both live in the declared DRAM
    limit = dram_bytes + NPZ_OVERHEAD_BYTES
    init = {}
    for key, array in _arrays(zf, "dram.npz", limit, where).items():
        if not (key[:1] == "a" and key[1:].isdigit() and key[1:].isascii()):
            raise ProgramError(f"{where}: dram.npz: array {key!r}; expected names a<address>")
        addr, data = int(key[1:]), array.tobytes()
        if addr + len(data) > dram_bytes:
            raise ProgramError(f"{where}: dram.npz: segment at {addr:,} ({len(data):,} bytes) "
                               f"ends past the program's {dram_bytes:,}-byte DRAM")
        init[addr] = data
    names = zf.namelist()
    example = _arrays(zf, "inputs.npz", limit, where) if "inputs.npz" in names else {}
    if "comments.json" in names:
        budget = sum(len(c) for c in cores) * COMMENT_BYTES_PER_INSTR + 2**20
        notes = _json(zf, "comments.json", budget, where)
        if not (isinstance(notes, list) and len(notes) == len(cores)
                and all(isinstance(n, list) and len(n) == len(c) and
                        all(t is None or isinstance(t, str) for t in n)
                        for n, c in zip(notes, cores))):
            raise ProgramError(f"{where}: comments.json: expected one list of op labels "
                               f"(strings or null) per core, one per instruction")
        cores = [[replace(i, comment=c) if c else i for i, c in zip(core, texts)]
                 for core, texts in zip(cores, notes)]
    tensors = {n: TensorPlacement(n, a, tuple(s), d)
               for n, (a, s, d) in header["tensors"].items()}
    return Program(header["chip"], cores, dram_bytes, tensors, header["inputs"],
                   header["outputs"], init, header.get("meta", {}), example)
