"""What the model suite measures, in one place: the error measures, the thresholds of
issue 14 and how a model is run on the chip through ``torch.compile``."""

from __future__ import annotations

from collections.abc import Callable

import torch

import chipforge

CHIP = "forge-i1"
BF16_REL = 2e-2  # max abs error / max abs output, against PyTorch fp32
PTQ_COSINE = 0.99  # int8 and fp8 post-training quantization, against PyTorch fp32
QUANTS = ("int8", "fp8")


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """Largest absolute error relative to the largest absolute expected value."""
    return ((got.float() - want.float()).abs().max() / want.float().abs().max()).item()


def cosine(got: torch.Tensor, want: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(got.float().flatten(), want.float().flatten(),
                                                 dim=0).item()


def on_chip(model: torch.nn.Module, call: Callable[[torch.nn.Module], torch.Tensor], *,
            no_grad: bool = True, **backend_options) -> tuple[torch.Tensor, object]:
    """``call(torch.compile(model))`` on the chip's simulator, under ``torch.no_grad()``
    unless ``no_grad=False`` (an eval-mode model called as is), with the backend (whose
    ``summary()`` says what ran where); dynamo starts fresh."""
    torch._dynamo.reset()
    backend = chipforge.torch_backend(CHIP, **backend_options)
    compiled = torch.compile(model, backend=backend, dynamic=False)
    try:
        with torch.set_grad_enabled(not no_grad):
            return call(compiled).detach(), backend
    finally:
        torch._dynamo.reset()


def quantized_nodes(backend) -> int:
    """How many ``quantize`` kernels the backend's compiled graphs hold (PTQ happened)."""
    return sum(node.op == "quantize" for runner in backend.runners
               for node in runner.graph.nodes)
