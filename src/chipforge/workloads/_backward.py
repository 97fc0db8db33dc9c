"""Backward-pass ops derived from forward ops, for the training graphs.

For Y[M,N] = X[M,K] · W[K,N] the backward pass is two GEMMs of the same FLOPs:
dX[M,K] = dY[M,N] · Wᵀ and dW[K,N] = Xᵀ · dY[M,N] (hence 6·N FLOPs per token in training,
Kaplan et al. 2020 §2.1; PaLM, Chowdhery et al. 2022, Appendix B).
"""

from __future__ import annotations

import dataclasses

from chipforge import ops
from chipforge.ops import Op, OpKind


def backward_ops(op: Op) -> list[Op]:
    """The ops that compute the input (and weight) gradients of ``op``."""
    name = op.name or op.kind.value
    if isinstance(op, ops.Matmul):
        return [ops.matmul(op.m, op.k, op.n, op.dtype, op.batch, name=f"{name}_dgrad"),
                ops.matmul(op.k, op.n, op.m, op.dtype, op.batch, name=f"{name}_wgrad")]
    if isinstance(op, ops.Conv2d):
        # dgrad and wgrad are implicit GEMMs with the forward's M·N·K (same FLOPs)
        return [dataclasses.replace(op, name=f"{name}_dgrad"),
                dataclasses.replace(op, name=f"{name}_wgrad")]
    if isinstance(op, ops.Attention):
        return [dataclasses.replace(op, backward=True, name=f"{name}_bwd")]
    if isinstance(op, ops.Elementwise):
        if op.fn in ("residual_add", "add"):  # gradients of the two branches are summed
            return [ops.elementwise(op.numel, "add", 2, 1, op.dtype, name=f"{name}_bwd")]
        if op.fn == "copy":  # concat / cache write: the gradient is a slice copy
            return [ops.elementwise(op.numel, "copy", 1, 1, op.dtype, name=f"{name}_bwd")]
        # read the forward inputs and dY, write one gradient per input
        return [ops.elementwise(op.numel, op.fn, op.inputs + 1, op.inputs, op.dtype,
                                name=f"{name}_bwd")]
    if op.kind in (OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.RMSNORM):
        # fused row-wise backward: reads y (or x) and dY, writes dX (one pass, no new op kind)
        numel = op.rows * op.cols  # type: ignore[attr-defined]
        return [ops.elementwise(numel, "mul", 2, 1, op.dtype, name=f"{name}_bwd")]
    if isinstance(op, ops.Reduce):
        return [ops.elementwise(op.rows * op.cols, "copy", 1, 1, op.dtype, name=f"{name}_bwd")]
    if isinstance(op, ops.EmbeddingBag):
        # scatter-add each gathered row's gradient into the table gradient
        numel = op.tables * op.batch * op.pooling * op.dim
        return [ops.elementwise(numel, "add", 2, 1, op.dtype, name=f"{name}_grad_scatter")]
    return []  # collectives: the training graphs here run on one device
