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

import torch

from chipforge.compiler.frontend._capture import Capture, Const, Dyn, add_input, finish, walk
from chipforge.compiler.frontend._handlers import handlers
from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph


def capture(model: torch.nn.Module, example_inputs: tuple, *, name: str = "model") -> KernelGraph:
    """The :class:`KernelGraph` of ``model(*example_inputs)`` (call ``model.eval()`` first).

    Inputs keep their shapes (float32 -> "fp32", int64/int32 -> "int32"); outputs are in
    the order the model returns them (nested tuples flattened).
    """
    if not isinstance(model, torch.nn.Module):
        raise CompileError(f"capture: model is a {type(model).__name__}; expected an nn.Module")
    if not isinstance(example_inputs, tuple):
        raise CompileError("capture: example_inputs must be a tuple of tensors")
    ep = torch.export.export(model, example_inputs).run_decompositions()
    known = {**ep.state_dict, **ep.constants}
    cap = Capture(name, handlers())
    specs = {s.arg.name: s for s in ep.graph_signature.input_specs}

    def placeholder(node: torch.fx.Node):
        spec = specs[node.name]
        if spec.kind.name == "USER_INPUT":
            return add_input(cap, node, node.meta["val"], "capture")
        return Const(known[spec.target], node.name, node.name)

    for value in walk(cap, ep.graph, placeholder):
        if not isinstance(value, Dyn | Const):
            raise CompileError(f"capture: model output {value!r} is not a tensor")
        cap.graph.outputs.append(cap.name(value))
    return finish(cap)
