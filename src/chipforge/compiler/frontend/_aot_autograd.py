"""Training front end: the forward and backward graphs of aot_autograd as
:class:`KernelGraph` s.

``torch.compile`` with ``aot_autograd(fw_compiler=..., bw_compiler=...,
decompositions=core_aten_decompositions())`` hands each compiler an ATen-level FX
``GraphModule`` and its example inputs; :func:`capture_fx` maps one such graph through the
node walk of ``_capture`` (the one ``_torch_export.capture`` uses) with the handlers of
``_aten_training`` added. Parameters, buffers, user inputs, the activations the forward
saves and the backward's tangents are all graph inputs, so nothing is folded except ops on
values made inside the graph (``full``, ``scalar_tensor``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily

from chipforge.compiler.frontend._capture import (
    Capture,
    Const,
    Dyn,
    add_input,
    finish,
    tensor_attribute,
    walk,
)
from chipforge.compiler.frontend._handlers import handlers
from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph

Slot = int | torch.Tensor | None


def capture_fx(gm: torch.fx.GraphModule, example_inputs: Sequence, *, name: str = "graph",
               ) -> tuple[KernelGraph, tuple[Slot, ...]]:
    """The :class:`KernelGraph` of an ATen-level FX graph (an aot_autograd forward or backward
    graph) and its output slots.

    Every placeholder is a graph input, in order, named as in the FX graph, its shape and
    dtype from ``node.meta["val"]`` or else the matching example input (float32 -> "fp32",
    int64/int32 -> "int32", bool -> a "fp32" 1.0 / 0.0 mask), except a placeholder with no
    elements (a zero-size dim), which is known and not an input (the caller leaves its
    argument out: :func:`graph_arguments`). The FX graph's outputs (a tuple or list,
    nested ones flattened) are, in order, tensors or None (no gradient for that input).
    ``slots`` has one entry per FX output: None for a None output; the tensor itself for
    an output known at capture time (an embedding bag's constant statistics, say), which
    the host returns as it is; else the index of its tensor in ``graph.outputs``.
    ``graph.outputs`` holds exactly the computed outputs in order, so the indices are
    0, 1, 2, ... and a runtime can fill the int slots with the graph's results one after
    another (:func:`arrange_outputs`). An output may be a graph input (aot's forward
    returns inputs it saves for the backward) and the same tensor may be output twice.
    """
    if not isinstance(gm, torch.fx.GraphModule):
        raise CompileError(f"capture_fx: gm is a {type(gm).__name__}; expected a "
                           f"torch.fx.GraphModule")
    examples = list(example_inputs)
    position = {n: i for i, n in enumerate(n for n in gm.graph.nodes if n.op == "placeholder")}
    cap = Capture(name, handlers(training=True), training=True)

    def placeholder(node: torch.fx.Node):
        val = node.meta.get("val")
        if val is None and position[node] < len(examples):
            val = examples[position[node]]
        if isinstance(val, torch.Tensor) and val.numel() == 0:  # nothing to read: known
            return Const(torch.empty(tuple(val.shape), dtype=val.dtype), node.name, node.name)
        return add_input(cap, node, val, "capture_fx")

    def get_attr(node: torch.fx.Node):
        return tensor_attribute(gm, node, "capture_fx")

    # aot_autograd calls its compilers under a FakeTensorMode: ops folded at capture time and
    # constants materialized must run on real tensors (a fake one has no values to read)
    with unset_fake_temporarily():
        slots: list[Slot] = []
        for value in walk(cap, gm.graph, placeholder, get_attr=get_attr, what="capture_fx"):
            if value is None or isinstance(value, Const):
                slots.append(None if value is None else value.value.detach().clone())
                continue
            if not isinstance(value, Dyn):
                raise CompileError(f"capture_fx: output {value!r} is not a tensor")
            slots.append(len(cap.graph.outputs))
            cap.graph.outputs.append(cap.name(value))
        graph = finish(cap)
    return graph, tuple(slots)


def arrange_outputs(slots: Sequence[Slot], values: Sequence) -> list:
    """The FX graph's outputs from the KernelGraph's ``values`` (in ``graph.outputs`` order):
    ``values[slot]``, the known tensor where the slot is one, None where it is None."""
    return [values[slot] if isinstance(slot, int) else slot for slot in slots]


def graph_arguments(gm: torch.fx.GraphModule, graph: KernelGraph) -> list[int]:
    """The positions of the FX graph's arguments that ``graph`` (its capture) takes as
    inputs: all but the zero-size ones."""
    names = [n.name for n in gm.graph.nodes if n.op == "placeholder"]
    taken = set(graph.inputs)
    return [i for i, name in enumerate(names) if name in taken]
