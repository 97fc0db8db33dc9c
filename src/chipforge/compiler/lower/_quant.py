"""Post-training quantization of a KernelGraph: int8 or fp8 (e4m3) matmuls and convolutions.

Weights are quantized per output channel, activations per tensor with a scale from the
largest magnitude seen on calibration inputs (symmetric: zero point 0). Each matmul (or
conv2d) with constant weights becomes

    q = quantize(a, scale_a)                  # int8 / fp8, round-to-nearest-even, saturate
    acc = matmul(q, W_q)                      # int8: int32 accumulation; fp8: fp32
    y = acc * (scale_a * scale_w[channel])    # back to floating point

Matmuls of two activations (attention) stay in the floating-point dtype.
"""

from __future__ import annotations

from dataclasses import replace

import ml_dtypes
import numpy as np

from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph, KernelNode
from chipforge.compiler.lower._reference import reference
from chipforge.numerics import FORMATS, INT_RANGE

# the largest magnitude of each quantized format
QMAX = {"int8": float(INT_RANGE["int8"][1]), "fp8_e4m3": FORMATS["fp8_e4m3"].max}


def _calibrate(graph: KernelGraph, names: list[str], inputs: list[dict[str, np.ndarray]]
               ) -> dict[str, float]:
    names = list(dict.fromkeys(names))  # several matmuls may read one activation
    probe = replace(graph, outputs=names, nodes=list(graph.nodes))
    amax = dict.fromkeys(names, 0.0)
    for sample in inputs:
        values = reference(probe, sample)
        for name in names:
            amax[name] = max(amax[name], float(np.max(np.abs(values[name]))))
    return amax


def _quantize_weights(w: np.ndarray, axis: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric scales along ``axis`` and the quantized weights."""
    other = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.max(np.abs(w), axis=other, keepdims=True).astype(np.float64)
    scale = np.where(amax > 0, amax / QMAX[dtype], 1.0)
    scaled = (w / scale).astype(np.float32)
    if dtype == "int8":
        q = np.clip(np.rint(scaled), -127, 127).astype(np.int8)
    else:
        q = np.clip(scaled, -448, 448).astype(ml_dtypes.float8_e4m3fn)
    return q, scale.reshape(-1)


def quantize_graph(graph: KernelGraph, calibration: list[dict[str, np.ndarray]],
                   dtype: str = "int8") -> KernelGraph:
    """A copy of ``graph`` with its weight matmuls and convolutions quantized to ``dtype``."""
    if dtype not in QMAX:
        raise CompileError(f"quantization dtype {dtype!r}; expected one of {', '.join(QMAX)}")
    if not calibration:
        raise CompileError("quantization needs at least one calibration input")
    targets = [n for n in graph.nodes if n.op in ("matmul", "conv2d")
               and n.inputs[1] in graph.constants]
    amax = _calibrate(graph, [n.inputs[0] for n in targets], calibration)
    out = KernelGraph(dict(graph.tensors), [], list(graph.inputs), list(graph.outputs),
                 dict(graph.constants), graph.name)
    acc_dtype = "int32" if dtype == "int8" else "fp32"
    for node in graph.nodes:
        if node not in targets:
            out.nodes.append(node)
            continue
        a, w_name = node.inputs[0], node.inputs[1]
        w = np.asarray(graph.constants[w_name], np.float32)
        axis = w.ndim - 1 if node.op == "matmul" else 0
        w_q, w_scale = _quantize_weights(w, axis, dtype)
        a_scale = max(amax[a], 1e-12) / QMAX[dtype]
        base = node.output
        q = out.add_node("quantize", (a,), f"{base}.q", graph.tensors[a].shape, dtype,
                         node.source, scale=a_scale, zero_point=0)
        wq = out.add_constant(f"{base}.wq", w_q, dtype)
        acc = out.add_node(node.op, (q, wq), f"{base}.acc", graph.tensors[base].shape,
                           acc_dtype, node.source, **dict(node.attrs))
        scale = (a_scale * w_scale).astype(np.float32)
        if node.op == "conv2d":
            scale = scale.reshape(-1, 1, 1)
        s = out.add_constant(f"{base}.scale", scale, "fp32")
        out.nodes.append(KernelNode("mul", (acc, s), base, (), node.source))
    out.validate()
    return out
