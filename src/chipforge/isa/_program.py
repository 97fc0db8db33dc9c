"""A compiled program: per-core instruction streams plus the DRAM image they run on.

Saved as a ``.cfp`` file: a zip holding ``program.json`` (chip, tensors, inputs,
outputs), ``core<i>.bin`` (encoded instructions) and ``dram.npz`` (initial DRAM segments:
weights and constants).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from chipforge.errors import ChipforgeError
from chipforge.isa._encode import decode_program, encode_program
from chipforge.isa._instr import Instr


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
    def load(cls, path: str | Path) -> Program:
        try:
            with zipfile.ZipFile(path) as zf:
                header = json.loads(zf.read("program.json"))
                cores = [decode_program(zf.read(f"core{i}.bin"))
                         for i in range(header["cores"])]
                data = np.load(io.BytesIO(zf.read("dram.npz")))
                init = {int(k[1:]): data[k].tobytes() for k in data.files}
                ex = np.load(io.BytesIO(zf.read("inputs.npz"))) \
                    if "inputs.npz" in zf.namelist() else None
                example = {k: ex[k] for k in ex.files} if ex is not None else {}
                if "comments.json" in zf.namelist():
                    notes = json.loads(zf.read("comments.json"))
                    cores = [[replace(i, comment=c) if c else i for i, c in zip(core, texts)]
                             for core, texts in zip(cores, notes)]
        except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise ChipforgeError(f"{path}: not a chipforge program (.cfp): {exc}") from None
        tensors = {n: TensorPlacement(n, a, tuple(s), d)
                   for n, (a, s, d) in header["tensors"].items()}
        return cls(header["chip"], cores, header["dram_bytes"], tensors, header["inputs"],
                   header["outputs"], init, header.get("meta", {}), example)
