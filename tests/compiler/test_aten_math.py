"""Elementwise math ops (``_math_kernels`` sequences and ``_aten_math`` handlers): reference()
against PyTorch float64, the simulator (fp32 activations) against PyTorch with a bound
derived from each approximation's error plus fp32 rounding, and the ATen front end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chipforge.compiler import ChipRunner, KernelGraph, capture, compile_graph, reference
from chipforge.isa import SPECIAL_UNOPS, Opcode, UnOp
from chipforge.machine import VectorPasses, vector_passes

ULP1 = 2.0**-24  # half the spacing of fp32 just below 1: one unit of fp32 rounding at 1
INF, NAN = math.inf, math.nan
EDGES = np.array([0.0, -0.0, INF, -INF, NAN, 1e30, -1e30, 3e38, -3e38, 1e-30, -1e-30,
                  1e-42, -1e-42, 1.0, -1.0, 0.5, -0.5], np.float32)


def _graph(op: str, shapes, dtype="fp32", **attrs) -> KernelGraph:
    g = KernelGraph(name=op)
    for i, shape in enumerate(shapes):
        g.add_tensor(f"x{i}", shape, dtype)
        g.inputs.append(f"x{i}")
    g.add_node(op, tuple(g.inputs), "y", tuple(np.broadcast_shapes(*shapes)), dtype, **attrs)
    g.outputs = ["y"]
    return g


def _ref(op: str, *xs: np.ndarray, **attrs) -> np.ndarray:
    g = _graph(op, [x.shape for x in xs], **attrs)
    return reference(g, {f"x{i}": x for i, x in enumerate(xs)})["y"]


def _chip(op: str, *xs: np.ndarray, **attrs) -> np.ndarray:
    """``op`` on the forge-t1 simulator with fp32 activations, as float64."""
    runner = ChipRunner(_graph(op, [x.shape for x in xs], **attrs), "forge-t1", "fp32")
    return runner(*(torch.from_numpy(x) for x in xs))[0].numpy().astype(np.float64)


def _grid(lo: float, hi: float, step: float, cols: int = 1024) -> np.ndarray:
    """Every multiple of ``step`` in [lo, hi] (fp32-exact), padded to rows of ``cols``."""
    x = np.arange(round(lo / step), round(hi / step) + 1) * step
    x = np.concatenate([x, np.full(-len(x) % cols, lo)])
    return x.astype(np.float32).reshape(-1, cols)


def _torch64(fn, x: np.ndarray) -> np.ndarray:
    return fn(torch.from_numpy(x).double()).numpy()


# ---- erf and exact GELU --------------------------------------------------------------------

# erf's approximation error in exact arithmetic is <= 6.5e-8 (1.1 fp32 rounding units at
# 1; checked below in float64), and evaluating its 25 steps in fp32 adds up to 5.4 units
# (measured): 6.5 units of 2**-24 = 3.9e-7 in all (measured 3.71e-7, 6.2 units).
ERF_BOUND = 6.5 * ULP1


def test_erf_approximation_error_in_exact_arithmetic():
    from chipforge.compiler.lower._math_kernels import ERF_P, ERF_Q

    x = np.linspace(0.0, 4.0, 400_001)
    approx = x * np.polyval(ERF_P, x * x) / np.polyval(ERF_Q, x * x)
    err = np.abs(approx - _torch64(torch.special.erf, x))
    assert err.max() <= 6.5e-8
    assert 1.0 - math.erf(4.0) < 1.6e-8  # beyond the clamp at 4, 1 is as close


def test_erf_reference_is_exact():
    x = np.concatenate([np.linspace(-5, 5, 101), EDGES.astype(np.float64)])
    # libm and PyTorch's float64 erf differ in the last bit
    np.testing.assert_allclose(_ref("erf", x), _torch64(torch.special.erf, x), rtol=1e-15,
                               atol=0)


def test_erf_on_chip_within_its_bound_over_a_fine_grid():
    x = _grid(-6.0, 6.0, 2.0**-12)
    err = np.abs(_chip("erf", x) - _torch64(torch.special.erf, x))
    assert err.max() <= ERF_BOUND
    assert err.max() > ULP1  # the bound is not vacuous: the approximation shows


def test_erf_on_chip_edge_values():
    y = _chip("erf", EDGES[None, :])[0]
    want = _torch64(torch.special.erf, EDGES)
    np.testing.assert_allclose(y, want, rtol=0, atol=ERF_BOUND)
    assert np.isnan(y[4]) and np.signbit(y[1]) and not np.signbit(y[0])
    assert list(y[2:4]) == [1.0, -1.0]
    tiny = np.geomspace(1e-37, 1e-3, 512).astype(np.float32)[None, :]  # normal fp32 values
    rel = np.abs(_chip("erf", tiny) / _torch64(torch.special.erf, tiny) - 1)
    assert rel.max() <= 4 * ULP1  # the odd rational keeps small values' relative accuracy


# gelu_erf = x * 0.5 * (1 + erf(x / sqrt(2))): erf's 6.5 units at 1 halved, plus x / sqrt(2),
# 1 + e and * x rounding once each: |error| <= 4.5 * 2**-24 * |x| (measured 4.1 units)
GELU_BOUND = 4.5 * ULP1


def test_gelu_erf_reference_matches_torch():
    x = np.concatenate([np.linspace(-8, 8, 161), EDGES.astype(np.float64)])
    finite = np.isfinite(x)
    diff = np.abs(_ref("gelu_erf", x) - _torch64(torch.nn.functional.gelu, x))[finite]
    assert (diff <= 1e-15 * np.maximum(np.abs(x[finite]), 1e-300)).all()  # libm's last bits
    for dtype in (torch.float32, torch.bfloat16):  # PyTorch's kernels give NaN at +-inf
        edge = torch.nn.functional.gelu(torch.from_numpy(EDGES).to(dtype)).float().numpy()
        np.testing.assert_array_equal(np.isnan(edge), np.isnan(_ref("gelu_erf", EDGES)))


def test_gelu_erf_on_chip_within_its_bound():
    x = _grid(-10.0, 10.0, 2.0**-10)
    exact = _torch64(torch.nn.functional.gelu, x)
    err = np.abs(_chip("gelu_erf", x) - exact)
    scale = np.maximum(np.abs(x.astype(np.float64)), 1e-45)
    assert (err <= GELU_BOUND * scale).all()
    # PyTorch's own fp32 GELU loses more in 1 + erf's cancellation for negative x
    torch32 = torch.nn.functional.gelu(torch.from_numpy(x)).double().numpy()
    assert (err / scale).max() < (np.abs(torch32 - exact) / scale).max()


def test_gelu_erf_on_chip_edge_values():
    y = _chip("gelu_erf", EDGES[None, :])[0]
    finite = np.isfinite(EDGES)
    np.testing.assert_array_equal(np.isnan(y), ~finite)  # as PyTorch's fp32 kernel
    want = _torch64(torch.nn.functional.gelu, EDGES.astype(np.float64))
    assert (np.abs(y - want)[finite] <= GELU_BOUND * np.abs(EDGES[finite]) + 1e-45).all()
    # no overflow in x * 2 (PyTorch's fp32 kernel gives inf at 3e38)
    assert y[7] == np.float32(3e38) and y[8] == 0.0


class _Bert(torch.nn.Module):
    """BERT's intermediate block: the exact GELU (nn.GELU's default) and a bare erf."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 32)
        self.act = torch.nn.GELU()

    def forward(self, x):
        return self.act(self.fc(x)) + torch.special.erf(x).sum(-1, keepdim=True)


def test_exact_gelu_and_erf_captured_and_run_on_chip():
    torch.manual_seed(0)
    model, x = _Bert().eval(), torch.randn(4, 16) * 3
    graph = capture(model, (x,))
    assert {"gelu_erf", "erf"} <= {n.op for n in graph.nodes}
    with torch.no_grad():
        want = model(x).double().numpy()
    got = reference(graph, {graph.inputs[0]: x.numpy()})[graph.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    chip = ChipRunner(graph, "forge-t1", "fp32")(x)[0].double().numpy()
    np.testing.assert_allclose(chip, want, rtol=0, atol=1e-4 * np.abs(want).max())


# ---- the schedule the timing model charges ---------------------------------------------------


@pytest.mark.parametrize("op", ["erf", "gelu_erf"])
def test_emitted_passes_are_the_schedule(op: str):
    program = compile_graph(_graph(op, [(4, 256)]), "forge-t1", dtype="bf16")
    vector = [i for i in program.cores[0] if i.op in (Opcode.V_UN, Opcode.V_BIN, Opcode.V_RED)]
    special = sum(i.op is Opcode.V_UN and UnOp(i.alu) in SPECIAL_UNOPS for i in vector)
    assert VectorPasses(len(vector) - special, special) == vector_passes(op)
