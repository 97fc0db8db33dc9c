"""The chipforge compiler: kernel graphs (from the op IR or PyTorch) to core programs."""

from chipforge.compiler._from_ops import kgraph_from_ops
from chipforge.compiler._graph import KERNEL_OPS, CompileError, KGraph, KNode, TensorInfo
from chipforge.compiler._lower import compile_graph

__all__ = ["KERNEL_OPS", "CompileError", "KGraph", "KNode", "TensorInfo", "compile_graph",
           "kgraph_from_ops"]
