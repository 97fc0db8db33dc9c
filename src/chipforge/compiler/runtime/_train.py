"""Training on the simulated chip: aot_autograd's forward and backward graphs compiled and
run by the simulator, and an AdamW optimizer whose update also runs on the chip.

Precision recipe: fp32 master weights live in the PyTorch parameters; the forward and
backward graphs take them as inputs and compute in the chip's floating-point dtype (bf16
by default: every tensor is rounded to bf16 on its way to DRAM, matmuls accumulate in
fp32); the AdamW update runs in fp32 on the vector units.
"""

from __future__ import annotations

import numpy as np

from chipforge.compiler.lower._kernel_graph import KernelGraph
from chipforge.compiler.runtime._runner import ChipRunner


def training_backend(chip: str, dtype: str, runners: list):
    """An aot_autograd backend whose forward and backward compilers target ``chip``."""
    from functorch.compile import make_boxed_func
    from torch._decomp import core_aten_decompositions
    from torch._dynamo.backends.common import aot_autograd

    from chipforge.compiler.frontend._aot_autograd import (
        arrange_outputs,
        capture_fx,
        graph_arguments,
    )

    def make_compiler(kind: str):
        def compiler(gm, example_inputs):
            graph, slots = capture_fx(gm, example_inputs, name=kind)
            runner = ChipRunner(graph, chip, dtype)
            runners.append(runner)
            dtypes = _output_dtypes(gm)
            taken = graph_arguments(gm, graph)  # zero-size arguments are left out

            def run(*args):
                out = arrange_outputs(slots, runner(*(args[i] for i in taken)))
                # the chip returns float32 and int32: restore the FX graph's dtypes (int64)
                return [v if v is None or want is None else v.to(want)
                        for v, want in zip(out, dtypes)]

            return make_boxed_func(run)

        return compiler

    return aot_autograd(fw_compiler=make_compiler("forward"),
                        bw_compiler=make_compiler("backward"),
                        decompositions=core_aten_decompositions())


def _output_dtypes(gm) -> list:
    """The torch dtype of each FX output (None for None outputs), to restore int64 etc."""
    import torch

    node = next(n for n in gm.graph.nodes if n.op == "output")
    outs = node.args[0] if isinstance(node.args[0], (tuple, list)) else (node.args[0],)
    dtypes = []
    for o in outs:
        val = getattr(o, "meta", {}).get("val") if o is not None else None
        dtypes.append(val.dtype if isinstance(val, torch.Tensor) else None)
    return dtypes


def adamw_graph(numel: int, lr: float, beta1: float, beta2: float, eps: float,
                weight_decay: float, cols: int = 1024) -> KernelGraph:
    """One AdamW step (torch.optim.AdamW's update) over ``numel`` fp32 values laid out as
    rows x cols. Inputs p, g, m, v and the step's bias corrections c1 = lr / (1 - beta1^t),
    c2 = 1 / (1 - beta2^t) as one-element tensors; outputs p', m', v'."""
    rows = -(-numel // cols)
    shape = (rows, cols)
    g = KernelGraph(name="adamw")
    for name in ("p", "g", "m", "v"):
        g.add_tensor(name, shape, "fp32")
    g.add_tensor("c1", (1,), "fp32")
    g.add_tensor("c2", (1,), "fp32")
    g.inputs = ["p", "g", "m", "v", "c1", "c2"]
    f = "fp32"
    g.add_node("mul", ("p",), "p.decay", shape, f, scalar=1.0 - lr * weight_decay)
    g.add_node("mul", ("m",), "m.b1", shape, f, scalar=beta1)
    g.add_node("mul", ("g",), "g.b1", shape, f, scalar=1.0 - beta1)
    g.add_node("add", ("m.b1", "g.b1"), "m.new", shape, f)
    g.add_node("square", ("g",), "g2", shape, f)
    g.add_node("mul", ("v",), "v.b2", shape, f, scalar=beta2)
    g.add_node("mul", ("g2",), "g2.b2", shape, f, scalar=1.0 - beta2)
    g.add_node("add", ("v.b2", "g2.b2"), "v.new", shape, f)
    g.add_node("mul", ("v.new", "c2"), "v.hat", shape, f)
    g.add_node("sqrt", ("v.hat",), "v.sqrt", shape, f)
    g.add_node("add", ("v.sqrt",), "denom", shape, f, scalar=eps)
    g.add_node("mul", ("m.new", "c1"), "m.step", shape, f)
    g.add_node("div", ("m.step", "denom"), "update", shape, f)
    g.add_node("sub", ("p.decay", "update"), "p.new", shape, f)
    g.outputs = ["p.new", "m.new", "v.new"]
    return g


def make_chip_adamw(chip: str = "forge-t1"):
    """``ChipAdamW(params, lr=..., betas=..., eps=..., weight_decay=...)``: torch.optim.AdamW
    semantics, the update computed on ``chip``'s simulator in fp32 (one program over all
    parameters, flattened)."""
    import torch

    class ChipAdamW(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                     weight_decay=1e-2, chip: str = chip):
            super().__init__(params, dict(lr=lr, betas=betas, eps=eps,
                                          weight_decay=weight_decay))
            self.chip = chip
            self.t = 0
            self._runner = None
            self.results = []

        @torch.no_grad()
        def step(self, closure=None):
            loss = closure() if closure is not None else None
            self.t += 1
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    self._step_group(group, params)
            return loss

        def _step_group(self, group, params):
            b1, b2 = group["betas"]
            flat = lambda ts: np.concatenate([t.detach().float().numpy().ravel()  # noqa: E731
                                              for t in ts])
            for p in params:
                st = self.state[p]
                if not st:
                    st["m"] = torch.zeros_like(p, dtype=torch.float32)
                    st["v"] = torch.zeros_like(p, dtype=torch.float32)
            numel = sum(p.numel() for p in params)
            key = (numel, group["lr"], b1, b2, group["eps"], group["weight_decay"])
            if self._runner is None or self._runner[0] != key:
                graph = adamw_graph(numel, group["lr"], b1, b2, group["eps"],
                                    group["weight_decay"])
                self._runner = (key, ChipRunner(graph, self.chip, "fp32"))
            runner = self._runner[1]
            rows, cols = runner.graph.tensors["p"].shape
            pad = rows * cols - numel

            def tensor(values):
                return torch.from_numpy(np.pad(values, (0, pad)).reshape(rows, cols))

            c1 = group["lr"] / (1 - b1 ** self.t)
            c2 = 1.0 / (1 - b2 ** self.t)
            out = runner(tensor(flat(params)), tensor(flat([p.grad for p in params])),
                         tensor(flat([self.state[p]["m"] for p in params])),
                         tensor(flat([self.state[p]["v"] for p in params])),
                         torch.tensor([c1], dtype=torch.float32),
                         torch.tensor([c2], dtype=torch.float32))
            self.results.append(runner.results[-1])
            new_p, new_m, new_v = (o.reshape(-1)[:numel] for o in out)
            start = 0
            for p in params:
                n = p.numel()
                p.copy_(new_p[start:start + n].view_as(p))
                self.state[p]["m"].copy_(new_m[start:start + n].view_as(p))
                self.state[p]["v"].copy_(new_v[start:start + n].view_as(p))
                start += n

    return ChipAdamW
