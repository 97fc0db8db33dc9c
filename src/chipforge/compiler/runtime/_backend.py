"""``torch.compile(model, backend=chipforge.torch_backend(chip=...))``: PyTorch models run
on the simulated chip.

Inference: dynamo hands over the model's FX graph with its parameters; it is exported to
core ATen, captured as a KernelGraph (parameters become constants), optionally quantized
with calibration inputs, compiled and run on the simulator for every call. Training (tensors
that require grad): aot_autograd splits the forward and backward graphs, each is compiled
with its parameters as inputs; see :mod:`chipforge.compiler.runtime._train`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chipforge.arch import load_chip
from chipforge.compiler.lower._kernel_graph import CompileError
from chipforge.compiler.lower._quant import QMAX, quantize_graph
from chipforge.compiler.runtime._runner import ChipRunner, feed
from chipforge.compiler.runtime._train import training_backend


def _is_state(node) -> bool:
    """A dynamo placeholder that is a module parameter or buffer (not a user input)."""
    arg = node.meta.get("grapharg")
    name = arg.source.name if arg is not None else node.name
    name = name() if callable(name) else str(name)
    return "._parameters[" in name or "._buffers[" in name or "_parameters_" in node.name \
        or "_buffers_" in node.name


def _bind_state(gm, example_inputs):
    """For inference: a module whose parameters and buffers are the values dynamo passed,
    held as buffers (so they become constants: weights can be quantized, batch norm
    folded), and the positions of the real user inputs. Later changes to the parameters
    are not seen: recompile after training."""
    import torch

    holders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    state = [i for i, n in enumerate(holders) if _is_state(n)]
    user = [i for i in range(len(holders)) if i not in state]

    class Bound(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gm = gm
            for j, i in enumerate(state):
                self.register_buffer(f"state{j}", example_inputs[i].detach().clone())

        def forward(self, *inputs):
            values = dict(zip(user, inputs))
            values.update({i: getattr(self, f"state{j}") for j, i in enumerate(state)})
            return self.gm(*(values[i] for i in range(len(holders))))

    return Bound().eval(), user


def torch_backend(chip: str = "forge-i1", *, quant: str | None = None,
                  calibration: Sequence[tuple] | None = None, dtype: str = "bf16",
                  ) -> Callable:
    """A ``torch.compile`` backend that runs graphs on ``chip``'s simulator.

    ``dtype`` is the floating-point storage and compute dtype ("bf16" by default).
    ``quant="int8"`` or ``"fp8"`` quantizes weight matmuls and convolutions after
    calibrating activation scales on ``calibration`` (a list of input tuples).
    The returned backend keeps every compiled graph in ``backend.runners``.
    """
    spec = load_chip(chip)
    qdtype = {"int8": "int8", "fp8": "fp8_e4m3", None: None}.get(quant, "?")
    if qdtype == "?":
        raise CompileError(f"quant={quant!r}; expected None, 'int8' or 'fp8'")
    if qdtype and qdtype not in QMAX:
        raise CompileError(f"quant dtype {qdtype!r} unsupported")
    if qdtype and not calibration:
        raise CompileError(f"quant={quant!r} needs calibration inputs (a list of input tuples)")

    def backend(gm, example_inputs):
        import torch

        if any(not isinstance(x, torch.Tensor) for x in example_inputs):
            raise CompileError("the chip compiles static shapes, but dynamo passed symbolic "
                               "sizes; use torch.compile(model, backend=..., dynamic=False)")

        # dynamo passes parameters as graph inputs: training if any input needs a gradient
        if torch.is_grad_enabled() and any(getattr(x, "requires_grad", False)
                                           for x in example_inputs):
            return training_backend(spec.name, dtype, backend.runners)(gm, example_inputs)

        from chipforge.compiler.frontend._torch_export import capture

        bound, user = _bind_state(gm, example_inputs)
        graph = capture(bound, tuple(example_inputs[i] for i in user), name="model")
        if qdtype:
            graph = quantize_graph(graph, [feed(graph, c) for c in calibration], qdtype)
        runner = ChipRunner(graph, spec.name, dtype)
        backend.runners.append(runner)
        return lambda *args: runner(*(args[i] for i in user))

    backend.runners = []
    return backend
