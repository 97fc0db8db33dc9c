"""A compiled graph bound to a chip and run on its simulator, with torch tensors in and
out: what the ``torch.compile`` backends (``_backend``, ``_train``) call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from chipforge.compiler.lower._compile import compile_graph
from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph

_INT32 = np.iinfo(np.int32)


def to_numpy(t, name: str = "input") -> np.ndarray:
    """A torch tensor as numpy: floats as float32, integer indices as int32 (a value outside
    int32, which the chip's integers hold, is an error rather than a silent wrap)."""
    import torch

    t = t.detach().cpu()
    if t.dtype.is_floating_point or t.dtype == torch.bool:  # bools travel as 0/1 masks
        return t.to(torch.float32).numpy()
    if t.numel() and (int(t.min()) < _INT32.min or int(t.max()) > _INT32.max):
        raise CompileError(f"{name}: integer values from {int(t.min())} to {int(t.max())} do "
                           f"not fit int32, the chip's integer type")
    return t.to(torch.int32).numpy()


def feed(graph: KernelGraph, args: Sequence) -> dict[str, np.ndarray]:
    if len(args) != len(graph.inputs):
        raise CompileError(f"{graph.name}: called with {len(args)} inputs; the compiled graph "
                           f"takes {len(graph.inputs)}")
    return {name: to_numpy(a, f"{graph.name}: input {name}")
            for name, a in zip(graph.inputs, args)}


@dataclass
class ChipRunner:
    """A compiled graph bound to a chip; calling it runs the simulator."""

    graph: KernelGraph
    chip: str
    dtype: str
    program: object = None
    results: list = field(default_factory=list)  # the SimResult of each call

    def __post_init__(self) -> None:
        self.program = compile_graph(self.graph, self.chip, dtype=self.dtype)

    def __call__(self, *args):
        import torch

        from chipforge.sim import simulate

        result = simulate(self.program, self.chip, feed(self.graph, args))
        self.results.append(result)
        outs = []
        for name in self.graph.outputs:
            value = result.outputs[name]
            # integer outputs stay integers; every float dtype comes back as float32
            value = value if value.dtype.kind in "iu" else np.asarray(value, np.float32)
            shape = self.graph.tensors[name].shape  # 0-d tensors (a loss) keep their shape
            outs.append(torch.from_numpy(np.ascontiguousarray(value).reshape(shape)))
        return tuple(outs)
