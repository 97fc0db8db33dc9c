"""``chipforge run --check``: a program's outputs on the simulator against the reference
outputs recorded when it was compiled.

``chipforge compile`` records, for the example inputs it saves, PyTorch's fp32 outputs of
the model (``source: "pytorch"``) and the kernel graph's float64 outputs
(:func:`chipforge.compiler.reference`, ``source: "float64"``) in ``program.meta["reference"]``,
each array as base64 of zlib-compressed little-endian float32. :func:`check_outputs` compares
the simulator's outputs with the PyTorch ones, or with the float64 ones where PyTorch's are
missing; it needs neither torch nor the model at run time.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass

import numpy as np

from chipforge.compiler.lower._kernel_graph import CompileError

# a reference larger than this is not recorded (the .cfp stays small); run --check then
# says so. assumption: 4 Mi floats (16 MiB raw) covers the example outputs of the models
# the README and the zoo compile.
MAX_REFERENCE_ELEMENTS = 4 * 1024 * 1024
# Norm-wise relative error ||y - ref|| / ||ref|| that --check accepts, by the program's
# compute dtype. assumption: bf16 rounds every tensor to 8 significant bits (unit roundoff
# 2^-9 = 0.2%); a few dozen layers of such roundings and bf16 matmul inputs stay below a
# few percent in the zoo's tests (tests/compiler/test_zoo_on_chip.py), so 5% flags real
# errors, not rounding. fp16 has 11 bits (2^-12): 1%. fp32 accumulates like PyTorch: 1e-3.
# Post-training int8/fp8 quantization adds a few percent per quantized layer: 15%.
DEFAULT_TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2, "bf16": 5e-2, "int8": 0.15,
                     "fp8_e4m3": 0.15}


@dataclass(frozen=True)
class OutputCheck:
    """One output's error against its reference."""

    name: str
    source: str  # "pytorch" or "float64"
    max_abs_error: float
    rel_error: float  # ||y - ref||_2 / ||ref||_2 (the absolute norm if ref is all zeros)
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(self.rel_error <= self.tolerance)


def _encode(array: np.ndarray) -> dict:
    data = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(data.shape),
            "data": base64.b64encode(zlib.compress(data.tobytes(), 6)).decode("ascii")}


def _decode(entry: dict, name: str) -> np.ndarray:
    """An array recorded by :func:`_encode`; the decompressed size is capped at what its
    shape declares, so a forged entry cannot expand without bound."""
    try:
        shape = tuple(int(s) for s in entry["shape"])
        want = int(np.prod(shape, dtype=np.int64)) * 4
        if any(s < 0 for s in shape) or want > MAX_REFERENCE_ELEMENTS * 4:
            raise ValueError(f"shape {shape} out of range")
        raw = zlib.decompressobj().decompress(base64.b64decode(entry["data"]), want + 1)
        if len(raw) != want:
            raise ValueError(f"{len(raw)} bytes for shape {shape}")
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        raise CompileError(f"the program's reference for output {name!r} is corrupt: "
                           f"{exc}") from None
    return np.frombuffer(raw, "<f4").reshape(shape)


def record_reference(program, graph, inputs: dict[str, np.ndarray], torch_outputs=None,
                     dtype: str = "bf16") -> None:
    """Store in ``program.meta["reference"]`` the float64 outputs of ``graph`` on ``inputs``
    and, if given, PyTorch's outputs (one array per graph output, in order)."""
    from chipforge.compiler.lower._reference import reference

    sources = {"float64": [reference(graph, inputs)[name] for name in graph.outputs]}
    if torch_outputs is not None and len(torch_outputs) == len(graph.outputs):
        sources["pytorch"] = list(torch_outputs)
    recorded = {}
    for source, arrays in sources.items():
        if sum(np.asarray(a).size for a in arrays) > MAX_REFERENCE_ELEMENTS:
            continue
        recorded[source] = {name: _encode(np.asarray(a, np.float64))
                            for name, a in zip(graph.outputs, arrays)}
    program.meta["reference"] = {"dtype": dtype, **recorded}


def check_outputs(program, outputs: dict[str, np.ndarray],
                  tolerance: float | None = None) -> list[OutputCheck]:
    """Each output of ``program`` against its recorded reference (PyTorch's, else the float64
    one). ``tolerance``: the accepted norm-wise relative error (default by dtype)."""
    recorded = program.meta.get("reference") if isinstance(program.meta, dict) else None
    if not isinstance(recorded, dict) or not ({"pytorch", "float64"} & set(recorded)):
        raise CompileError("the program carries no reference outputs to check against "
                           "(compile it with `chipforge compile`, which records them for "
                           "the example inputs)")
    source = "pytorch" if isinstance(recorded.get("pytorch"), dict) else "float64"
    refs = recorded[source]
    if not isinstance(refs, dict):
        raise CompileError(f"the program's {source} reference is corrupt: not a mapping")
    dtype = str(recorded.get("dtype", "bf16"))
    tol = float(tolerance) if tolerance is not None else DEFAULT_TOLERANCE.get(dtype, 5e-2)
    checks = []
    for name in program.outputs:
        if name not in refs:
            raise CompileError(f"the program's {source} reference has no output {name!r}")
        want = _decode(refs[name], name).astype(np.float64)
        got = np.asarray(outputs[name], np.float64)
        if got.size != want.size:
            raise CompileError(f"output {name!r} has {got.size} values; its reference has "
                               f"{want.size}")
        diff = got.reshape(want.shape) - want
        scale = float(np.linalg.norm(want))
        err = float(np.linalg.norm(diff))
        max_abs = float(np.max(np.abs(diff))) if diff.size else 0.0
        checks.append(OutputCheck(name, source, max_abs, err / scale if scale else err, tol))
    return checks
