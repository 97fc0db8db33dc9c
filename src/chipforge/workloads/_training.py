"""Turn a forward ``(op, count)`` list into a training step: forward, backward, optimizer."""

from __future__ import annotations

from chipforge import ops
from chipforge.ops import GraphBuilder, Op
from chipforge.workloads._backward import backward_ops

OPTIMIZERS = ("adamw", "sgd", "momentum", "adagrad")


def optimizer_ops(numel: int, optimizer: str, name: str = "") -> list[Op]:
    """One fp32 update over ``numel`` parameters (reads and writes every state tensor once).

    adamw: param, grad, m, v -> param, m, v (torch.optim.AdamW). sgd: param, grad -> param.
    momentum: SGD with momentum, param, grad, buf -> param, buf. adagrad: param, grad, sum
    -> param, sum.
    """
    label = name or optimizer
    if optimizer == "adamw":
        return [ops.elementwise(numel, "adamw", 4, 3, "fp32", name=label)]
    if optimizer == "sgd":
        return [ops.elementwise(numel, "add", 2, 1, "fp32", name=label)]
    if optimizer == "momentum":
        return [ops.elementwise(numel, "add", 3, 2, "fp32", name=label)]
    return [ops.elementwise(numel, "div", 3, 2, "fp32", name=label)]


def add_training(b: GraphBuilder, fwd: list[tuple[Op, int]], steps: int, params: int,
                 dtype: str, optimizer: str) -> GraphBuilder:
    """Forward then backward (reverse order) ``steps`` times, then one optimizer update.

    Mixed precision (Micikevicius et al. 2018): below fp32 the gradients are cast up for the
    fp32 master weights, which are cast back down after the update.
    """
    for op, n in fwd:
        b.add(op, n * steps)
    for op, n in reversed(fwd):
        for grad_op in backward_ops(op):
            b.add(grad_op, n * steps)
    if params <= 0:
        return b
    if dtype != "fp32":
        b.add(ops.elementwise(params, "cast", 1, 1, "fp32", name="grad_cast"))
    for op in optimizer_ops(params, optimizer):
        b.add(op)
    if dtype != "fp32":
        b.add(ops.elementwise(params, "cast", 1, 1, dtype, name="param_cast"))
    return b
