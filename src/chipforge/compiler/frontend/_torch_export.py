"""PyTorch front end: capture an ``nn.Module`` as a :class:`KernelGraph` through
``torch.export``.

``torch.export.export(model, example_inputs).run_decompositions()`` gives a core-ATen FX
graph, walked node by node (``_capture.walk``). Parameters and buffers are known at capture
time: any node whose tensor inputs are all known (weights, buffers, masks, RoPE tables,
``arange``/``full`` results) is evaluated with torch right away ("constant folding") and
becomes a KernelGraph constant (float32 numpy, "fp32"; integer tensors int32) when a
computed node reads it. Every other node is mapped onto ``KERNEL_OPS`` by a handler in
``_aten_ops`` or ``_aten_nn``; an op with no handler fails with a one-line
:class:`CompileError` naming the op, the user's source line and the supported ops
(:func:`~._handlers.supported_ops`).

Mapping choices: addmm is matmul + add; batch norm (inference) is mul + add by constants
scale = w / sqrt(var + eps), shift = b - mean * scale of shape [C, 1, 1]; where() with a
known mask is x * mask + y * (1 - mask), exact for finite values; erf gelu is rejected
(the kernel gelu is the tanh approximation); comparisons of computed values are refused
except in SDPA's guard for fully masked rows, which is dropped. Clean-ups: the matmul
decomposition's flattening (view to 2-D/3-D, mm/bmm, view back) is undone into one
batched matmul; a reshape of a reshape, or a permute of a permute, reads the original;
``x * sigmoid(x)`` is silu and ``x * rsqrt(mean(x**2, -1) + eps) * w`` rmsnorm. A
constant of lower rank than a binary op's result is stored with leading 1s (a Linear
bias [n] as [1, n]). Nodes no output needs are dropped. Each node's ``source`` is the
user's line (``FILE:LINE `code` in module PATH (TYPE)``). Import this module only where
torch is installed.

Training: :func:`~._aot_autograd.capture_fx` maps the forward and backward graphs of
aot_autograd through the same node walk, with the handlers of ``_aten_training`` added
(``Capture(..., training=True)``): comparisons of computed values are then kernel ops
giving 1.0 / 0.0 float masks instead of being refused.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping

import torch

from chipforge.compiler.frontend._capture import Capture, Const, Dyn, add_input, finish, walk
from chipforge.compiler.frontend._handlers import handlers
from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph

_MAX_DEPTH = 8  # output nesting followed (a cache of layers of key/value pairs is depth 4)


def output_tensors(value, what: str = "output", depth: int = 0) -> list[torch.Tensor]:
    """The tensors of a model's return value, in order: a tensor; the items of a tuple or
    list; the values of a mapping (a ``ModelOutput``: its non-None fields); any other
    object's attributes (``vars()``, in order: a transformers ``DynamicCache`` gives each
    layer's keys then values). None, numbers, strings and other leaves without tensors
    are dropped: they are constants of the trace, not computed."""
    if isinstance(value, torch.Tensor):
        return [value]
    if depth > _MAX_DEPTH:
        raise CompileError(f"capture: the model's {what} nests deeper than {_MAX_DEPTH} "
                           f"levels; return the tensors you need (e.g. `.logits`)")
    if isinstance(value, Mapping):
        items = [(f"{what}[{k!r}]", v) for k, v in value.items()]
    elif isinstance(value, tuple | list):
        items = [(f"{what}[{i}]", v) for i, v in enumerate(value)]
    elif hasattr(value, "__dict__") and not isinstance(value, type | torch.nn.Module):
        items = [(f"{what}.{k}", v) for k, v in vars(value).items()]
    else:
        return []
    return [t for name, v in items for t in output_tensors(v, name, depth + 1)]


def _flattened(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` returning its :func:`output_tensors` as a tuple, so torch.export needs no
    pytree for its output types: a shallow copy (sharing parameters and submodules) whose
    class is a subclass of the model's with the same name and forward signature, so input
    names, parameter names and module paths stay the user's."""
    cls = type(model)
    inner = cls.forward

    @functools.wraps(inner)
    def forward(self, *args, **kwargs):
        return tuple(output_tensors(inner(self, *args, **kwargs)))

    flat = copy.copy(model)
    flat.__class__ = type(cls.__name__, (cls,), {"forward": forward,
                                                 "__module__": cls.__module__})
    return flat


def _views_as_reshapes(ep: torch.export.ExportedProgram) -> None:
    """Make the exported program's ``aten.view`` nodes ``aten.reshape``, in place, before
    decomposing. Both give the same values wherever ``view`` is valid, but decomposing can
    give a tensor other strides than eager did (GPT-2's attention output, transposed by
    SDPA's decomposition), and a ``view`` of it then fails; ``reshape`` copies there."""
    changed = False
    for node in ep.graph.nodes:
        if node.target is torch.ops.aten.view.default:
            node.target = torch.ops.aten.reshape.default
            changed = True
    if changed:
        ep.graph_module.recompile()


def _export(model: torch.nn.Module, args: tuple, kwargs: dict) -> torch.export.ExportedProgram:
    """The core-ATen program of ``model(*args, **kwargs)``; any failure of torch.export is
    one :class:`CompileError` with the exception's type and first line."""
    try:
        ep = torch.export.export(_flattened(model), args, kwargs)
        _views_as_reshapes(ep)
        return ep.run_decompositions()
    except CompileError:
        raise
    except Exception as e:  # noqa: BLE001 - torch.export raises many types; each is made clean
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
        raise CompileError(
            f"torch.export could not capture the model: {type(e).__name__}: {first} (make "
            f"the forward traceable: tensor inputs of the given shapes, no Python branches "
            f"on tensor values; or compile it with torch.compile(model, "
            f"backend=chipforge.torch_backend(...)), which runs such code on the host)") from e


def capture(model: torch.nn.Module, example_inputs: tuple, *, name: str = "model",
            example_kwargs: dict | None = None) -> KernelGraph:
    """The :class:`KernelGraph` of ``model(*example_inputs, **example_kwargs)`` (call
    ``model.eval()`` first).

    Inputs keep their shapes (float32 -> "fp32", int64/int32 -> "int32"), positional ones
    first, then the keyword ones in ``example_kwargs``' order. The outputs are the tensors
    of the return value in order (:func:`output_tensors`: tuples, lists, dicts and
    ``ModelOutput`` fields, cache objects' key and value tensors). A failure of
    torch.export is one :class:`CompileError`.
    """
    if not isinstance(model, torch.nn.Module):
        raise CompileError(f"capture: model is a {type(model).__name__}; expected an nn.Module")
    if not isinstance(example_inputs, tuple):
        raise CompileError("capture: example_inputs must be a tuple of tensors")
    if example_kwargs is not None and not isinstance(example_kwargs, dict):
        raise CompileError("capture: example_kwargs must be a dict of tensors")
    ep = _export(model, example_inputs, example_kwargs or {})
    known = {**ep.state_dict, **ep.constants}
    cap = Capture(name, handlers())
    specs = {s.arg.name: s for s in ep.graph_signature.input_specs}

    def placeholder(node: torch.fx.Node):
        spec = specs[node.name]
        if spec.kind.name == "USER_INPUT":
            return add_input(cap, node, node.meta["val"], "capture")
        return Const(known[spec.target], node.name, node.name)

    values = walk(cap, ep.graph, placeholder)
    if not values:
        raise CompileError(f"capture: {type(model).__name__} returns no tensor")
    for value in values:
        if not isinstance(value, Dyn | Const):
            raise CompileError(f"capture: model output {value!r} is not a tensor")
        cap.graph.outputs.append(cap.name(value))
    return finish(cap)
