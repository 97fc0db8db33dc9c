"""torchvision ResNet-50 (v1.5) as an op graph.

ResNet-50: He et al. 2016 (arXiv:1512.03385) with torchvision's v1.5 change, the stride on
the 3x3 conv of each bottleneck (torchvision ``resnet.py``). Batch norm and ReLU appear as
unfused elementwise ops; in training batch norm uses batch statistics (a row op per
channel over N·H·W).
"""

from __future__ import annotations

from chipforge import ops
from chipforge.errors import WorkloadError
from chipforge.ops import Graph, GraphBuilder, Op
from chipforge.workloads._common import check_dtype, pos_int
from chipforge.workloads._memory import (
    MemoryFootprint,
    SplitMemory,
    forward_activations,
    training_state_bytes,
)
from chipforge.workloads._training import add_training

Nodes = list[tuple[Op, int]]

# (bottleneck width, blocks, stride of the first block) per stage (torchvision resnet50)
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


class _Net:
    """Collects a CNN's forward nodes and parameter count as layers are added."""

    def __init__(self, batch: int, dtype: str, train: bool) -> None:
        self.batch, self.dtype, self.train = batch, dtype, train
        self.nodes: Nodes = []
        self.params = 0

    def conv(self, cin: int, cout: int, h: int, kernel: int, stride: int, padding: int,
             name: str) -> int:
        """Conv (no bias) + batch norm; returns the output height (= width)."""
        op = ops.conv2d(self.batch, cin, cout, h, h, kernel, stride, padding, dtype=self.dtype,
                        name=name)
        numel = self.batch * cout * op.out_h * op.out_w
        bn = (ops.layernorm(cout, self.batch * op.out_h * op.out_w, self.dtype,
                            name=f"{name}_bn") if self.train
              else ops.elementwise(numel, "scale", 1, 1, self.dtype, name=f"{name}_bn"))
        self.nodes += [(op, 1), (bn, 1)]
        self.params += cout * cin * kernel * kernel + 2 * cout  # weight; bn gamma, beta
        return op.out_h

    def act(self, numel: int, fn: str, name: str, inputs: int = 1) -> None:
        self.nodes.append((ops.elementwise(numel, fn, inputs, 1, self.dtype, name=name), 1))


def _bottleneck(net: _Net, cin: int, width: int, stride: int, h: int, name: str) -> int:
    out = width * 4
    net.conv(cin, width, h, 1, 1, 0, f"{name}_conv1")
    net.act(net.batch * width * h * h, "relu", f"{name}_relu1")
    h2 = net.conv(width, width, h, 3, stride, 1, f"{name}_conv2")  # v1.5: stride here
    net.act(net.batch * width * h2 * h2, "relu", f"{name}_relu2")
    net.conv(width, out, h2, 1, 1, 0, f"{name}_conv3")
    if stride != 1 or cin != out:
        net.conv(cin, out, h, 1, stride, 0, f"{name}_downsample")
    net.act(net.batch * out * h2 * h2, "residual_add", f"{name}_add", inputs=2)
    net.act(net.batch * out * h2 * h2, "relu", f"{name}_relu3")
    return h2


def resnet50(batch: int, image: int = 224, dtype: str = "bf16", classes: int = 1000,
             train: bool = False) -> Graph:
    """ResNet-50 v1.5 on ``batch`` images of ``image``² pixels (SGD-momentum when training)."""
    where = "resnet50"
    pos_int(where, "batch", batch)
    pos_int(where, "image", image)
    pos_int(where, "classes", classes)
    check_dtype(where, dtype)
    if image < 32:
        raise WorkloadError(f"{where}: image={image}; expected at least 32 (five stride-2 "
                            "stages)")
    net = _Net(batch, dtype, train)
    h = net.conv(3, 64, image, 7, 2, 3, "conv1")
    net.act(batch * 64 * h * h, "relu", "relu1")
    pooled = (h + 2 - 3) // 2 + 1  # maxpool 3x3, stride 2, padding 1
    net.nodes.append((ops.reduce(batch * 64 * pooled * pooled, 9, "max", dtype,
                                 name="maxpool"), 1))
    h, cin = pooled, 64
    for s, (width, blocks, stride) in enumerate(RESNET50_STAGES, start=1):
        h = _bottleneck(net, cin, width, stride, h, f"layer{s}.0")
        cin = width * 4
        start = len(net.nodes)
        params = net.params
        _bottleneck(net, cin, width, 1, h, f"layer{s}.1")
        # blocks 1.. of a stage are identical: one copy with a count
        net.nodes[start:] = [(op, n * (blocks - 1)) for op, n in net.nodes[start:]]
        net.params += (net.params - params) * (blocks - 2)
    net.nodes += [(ops.reduce(batch * cin, h * h, "mean", dtype, name="avgpool"), 1),
                  (ops.matmul(batch, classes, cin, dtype, name="fc"), 1)]
    net.params += cin * classes + classes
    return _finish(net, f"resnet50 {'train' if train else 'inference'} b{batch}", classes,
                   "momentum", image=image)


def _finish(net: _Net, name: str, classes: int, optimizer: str, **meta: object) -> Graph:
    b = GraphBuilder(name)
    meta = {"model": name.split()[0], "phase": "train" if net.train else "inference",
            "dtype": net.dtype, "params": net.params, "batch": net.batch, **meta}
    fwd = list(net.nodes)
    if net.train:
        fwd.append((ops.softmax(net.batch, classes, "fp32", name="cross_entropy"), 1))
        add_training(b, fwd, 1, net.params, net.dtype, optimizer)
    else:
        for op, n in net.nodes:
            b.add(op, n)
    meta["memory"] = _memory(net, fwd, optimizer)
    return b.build(items=net.batch, item_unit="samples", **meta)


def _memory(net: _Net, fwd: Nodes, optimizer: str) -> SplitMemory:
    """Weights (and training state) replicated; activations split over the batch (data
    parallelism). Activations: :func:`forward_activations`."""
    grads, optim = (training_state_bytes(net.params, net.dtype, optimizer) if net.train
                    else (0.0, 0.0))
    whole = MemoryFootprint(net.params * ops.dtype_bytes(net.dtype), 0.0,
                            forward_activations(fwd, net.train), grads, optim,
                            basis=f"{net.dtype} weights, activations of batch {net.batch}"
                            + (f", {optimizer} training state" if net.train else ""))
    return SplitMemory(whole, ("activations_bytes",), "batch")
