"""Core ATen coverage: which ops of PyTorch's Core ATen opset the two captures map, and why
the others are not (``chipforge ops``).

The Core ATen opset is read from the installed torch: every overload packet of
``torch.ops.aten`` with an overload tagged ``torch.Tag.core`` (164 in torch 2.13). An op is

- ``supported`` when the capture's handler registry (``_handlers``, read live) maps it;
- ``folded`` when it takes no tensor inputs (creation ops such as ``arange``, ``full``): its
  result is always known at capture time and becomes a constant;
- ``decomposed`` when PyTorch's Core ATen decompositions (which both captures apply) rewrite
  every Core overload of it into other ops before capture, and it has no handler: it runs
  as those ops (the op-by-op tests check each such op through its decomposition);
- ``unsupported`` otherwise, with the reason from :data:`REASONS` (one table), or a generic
  one. Any op whose tensor inputs are all constants is folded at capture time as well,
  whether or not it is supported.

:func:`capture_function` captures a plain function of tensors through ``make_fx`` with the
Core ATen decompositions: the op-by-op tests use it (it is ~100x faster than
``torch.export``), with either capture's handlers. Import this module only where torch is
installed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from chipforge.compiler.frontend._capture import (
    Capture,
    Const,
    Dyn,
    add_input,
    finish,
    tensor_attribute,
    walk,
)
from chipforge.compiler.frontend._handlers import handlers, supported_ops
from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph

# creation ops: no tensor inputs, so always folded into constants
FOLDED = frozenset({"arange", "full", "empty", "empty_strided", "scalar_tensor"})

_NO_RNG = "no RNG on the chip (folding it would freeze one random draw into the program)"
_SYMBOLIC = ("a symbolic-shape query: appears only under dynamic shapes, and chipforge compiles "
             "static shapes (a new shape is a new compile)")
_BACKWARD = "a backward op, not implemented yet (training a model that uses the forward op fails)"

# why each op is not supported (one table; ops that gain a handler simply stop being listed)
REASONS: dict[str, str] = {
    "rand": _NO_RNG,
    "randn": _NO_RNG,
    "randperm": _NO_RNG,
    "native_dropout": "no RNG on the chip (dropout with p > 0 while training)",
    "nonzero": "data-dependent output shape",
    "masked_scatter": "data-dependent placement: its source positions depend on a computed mask",
    "_local_scalar_dense": ("a host scalar read (.item()) of a computed value: data-dependent, "
                            "no static program can produce it"),
    "_fft_r2c": "complex dtypes (the chip has no complex arithmetic)",
    "_fft_c2r": "complex dtypes (the chip has no complex arithmetic)",
    "sym_size": _SYMBOLIC,
    "sym_numel": _SYMBOLIC,
    "sym_stride": _SYMBOLIC,
    "sym_storage_offset": _SYMBOLIC,
    "sym_is_contiguous": _SYMBOLIC,
    "resize_": ("an in-place storage resize: chipforge captures functional graphs, where a "
                "tensor's size is fixed"),
    "convolution_backward": ("training only (capture_fx): a backward op, which only "
                             "aot_autograd's backward graphs contain"),
}
_DEFAULT = "not implemented yet: no handler maps it onto the chip's kernel ops"


@dataclasses.dataclass(frozen=True)
class OpCoverage:
    """One Core ATen op: ``status`` ("supported", "folded" or "unsupported") in capture()
    (inference) and capture_fx() (training), and the reason where it is not supported."""

    op: str
    inference: str
    training: str
    reason: str = ""


def core_aten_ops() -> list[str]:
    """The sorted overload-packet names of the installed torch's Core ATen opset."""
    # the dispatcher's names, not dir(torch.ops.aten): that lists only packets already loaded
    packets = {name.split("::", 1)[1].split(".", 1)[0]
               for name in torch._C._dispatch_get_all_op_names() if name.startswith("aten::")}
    names = []
    for name in packets:
        packet = getattr(torch.ops.aten, name, None)
        if isinstance(packet, torch._ops.OpOverloadPacket) and any(
                torch.Tag.core in getattr(packet, o).tags for o in packet.overloads()):
            names.append(name)
    return sorted(names)


def decomposed_ops() -> set[str]:
    """The Core ATen ops whose every Core overload ``core_aten_decompositions()`` rewrites."""
    from torch._decomp import core_aten_decompositions

    table = set(core_aten_decompositions())
    out = set()
    for name in core_aten_ops():
        packet = getattr(torch.ops.aten, name)
        core = [getattr(packet, o) for o in packet.overloads()
                if torch.Tag.core in getattr(packet, o).tags]
        if all(o in table for o in core):
            out.add(name)
    return out


def _status(op: str, supported: set[str], decomposed: set[str]) -> str:
    if op in supported:
        return "supported"
    if op in FOLDED:
        return "folded"
    return "decomposed" if op in decomposed and op not in REASONS else "unsupported"


def op_coverage() -> list[OpCoverage]:
    """Every Core ATen op with its status in both captures and, where either does not
    support it, the reason."""
    inference, training = set(supported_ops()), set(supported_ops(training=True))
    decomposed = decomposed_ops()
    rows = []
    for op in core_aten_ops():
        i, t = _status(op, inference, decomposed), _status(op, training, decomposed)
        reason = ""
        if t == "unsupported":
            reason = REASONS.get(op, _DEFAULT)
        elif i == "unsupported":
            reason = "training capture only (capture_fx); capture() does not map it"
        rows.append(OpCoverage(op, i, t, reason))
    return rows


def coverage_totals(rows: Sequence[OpCoverage] | None = None) -> dict[str, dict[str, float]]:
    """Per capture: ``covered`` (supported, folded or decomposed), ``total`` and
    ``percent``."""
    rows = op_coverage() if rows is None else rows
    out = {}
    for mode in ("inference", "training"):
        covered = sum(getattr(r, mode) != "unsupported" for r in rows)
        out[mode] = {"covered": covered, "total": len(rows),
                     "percent": round(100.0 * covered / len(rows), 1)}
    return out


def _core_aten_table() -> dict:
    """``core_aten_decompositions()`` as the plain dict make_fx copies it into, built once
    per state of torch's registries: building it walks every registered op (~45 ms, five
    times the trace of a small function); a newly registered op or decomposition rebuilds
    it (the key is the two registries' sizes)."""
    from torch._decomp import decomposition_table

    composite = torch._C._dispatch_get_registrations_for_dispatch_key(
        "CompositeImplicitAutograd")
    return _core_aten_table_for((len(composite), len(decomposition_table)))


@functools.lru_cache(maxsize=2)  # the table of the registries as they are now
def _core_aten_table_for(registry_sizes: tuple[int, int]) -> dict:
    from torch._decomp import core_aten_decompositions

    return dict(core_aten_decompositions())


def capture_function(fn: Callable, args: Sequence[torch.Tensor], *, training: bool = False,
                     name: str = "function") -> KernelGraph:
    """The :class:`KernelGraph` of ``fn(*args)``: traced by ``make_fx`` with the Core ATen
    decompositions, every argument a graph input (float -> "fp32", int64 -> "int32"; bool
    only with ``training``, as a 1.0 / 0.0 mask), tensors ``fn`` closes over constants; the
    nodes mapped with capture()'s handlers (``training``: capture_fx()'s). Outputs are
    ``fn``'s tensors in order (nested tuples flattened)."""
    try:
        # through *args: make_fx would trace a defaulted parameter of fn as an input
        gm = make_fx(lambda *a: fn(*a), decomposition_table=_core_aten_table())(*args)
    except Exception as e:  # noqa: BLE001 - torch's own tracing error, reported as ours
        raise CompileError(f"capture_function: tracing {name} failed: "
                           f"{type(e).__name__}: {e}") from e
    gm.graph.eliminate_dead_code()  # make_fx keeps unused outputs of multi-output ops
    cap = Capture(name, handlers(training), training=training)

    def placeholder(node: torch.fx.Node):
        return add_input(cap, node, node.meta.get("val"), "capture_function")

    def get_attr(node: torch.fx.Node):
        return tensor_attribute(gm, node, "capture_function")

    for value in walk(cap, gm.graph, placeholder, get_attr=get_attr, what="capture_function"):
        if not isinstance(value, Dyn | Const):
            raise CompileError(f"capture_function: output {value!r} is not a tensor")
        cap.graph.outputs.append(cap.name(value))
    return finish(cap)


__all__ = ["FOLDED", "REASONS", "OpCoverage", "capture_function", "core_aten_ops",
           "coverage_totals", "decomposed_ops", "op_coverage"]
