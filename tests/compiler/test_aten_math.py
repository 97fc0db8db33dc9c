"""Elementwise math ops (``_math_kernels`` sequences and ``_aten_math`` handlers): reference()
against PyTorch float64, the simulator (fp32 activations) against PyTorch with a bound
derived from each approximation's error plus fp32 rounding, and the ATen front end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chipforge.compiler import ChipRunner, KernelGraph, capture, compile_graph, reference
from chipforge.compiler.lower._math_kernels import MATH_OPS
from chipforge.isa import SPECIAL_UNOPS, Opcode, UnOp
from chipforge.machine import VectorPasses, vector_passes

# NaN and inf edge values are compared on purpose
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning")
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


@pytest.mark.parametrize("op", [*MATH_OPS, "abs"])
def test_emitted_passes_are_the_schedule(op: str):
    arity = MATH_OPS[op].arity if op in MATH_OPS else 1
    program = compile_graph(_graph(op, [(4, 256)] * arity), "forge-t1", dtype="bf16")
    vector = [i for i in program.cores[0] if i.op in (Opcode.V_UN, Opcode.V_BIN, Opcode.V_RED)]
    special = sum(i.op is Opcode.V_UN and UnOp(i.alu) in SPECIAL_UNOPS for i in vector)
    assert VectorPasses(len(vector) - special, special) == vector_passes(op)


# ---- exact ops: sign, rounding, classification, leaky_relu -----------------------------------

ROUNDING = np.array([2.5, -2.5, 1.5, -1.5, 0.5, -0.5, 0.49999997, -0.49999997, 8388607.5,
                     -8388607.5, 8388608.0, 2.0**31 + 2.0**9, -3e9, 1e30, 1.0, -1.0, 1e-42],
                    np.float32)
EXACT = {"abs": torch.abs, "sign": torch.sign, "trunc": torch.trunc, "floor": torch.floor,
         "ceil": torch.ceil, "round": torch.round, "isnan": torch.isnan, "isinf": torch.isinf,
         "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01)}


@pytest.mark.parametrize("op", sorted(EXACT))
def test_exact_ops_equal_torch(op: str):
    """No approximation: every value as PyTorch's fp32 kernel gives it (a zero's sign aside,
    which the rounding ops make +0), on a grid, random values and the edge values."""
    rng = np.random.default_rng(1)
    x = np.concatenate([np.linspace(-6, 6, 97), rng.standard_normal(64) * 1e3, EDGES,
                        ROUNDING]).astype(np.float32)[None, :]
    want = EXACT[op](torch.from_numpy(x)).double().numpy()
    np.testing.assert_array_equal(_chip(op, x), want)
    exact = EXACT[op](torch.from_numpy(x).double()).double().numpy()
    np.testing.assert_array_equal(_ref(op, x.astype(np.float64)), exact)


# ---- exponentials and logarithms ---------------------------------------------------------------
# bounds in units of 2**-24 relative to the exact result (one fp32 rounding is <= 1 unit)
# log2, log10: log rounds once, the constant 1/log(b) once, the product once: 3 units
# expm1 (Kahan): exp and log round once each, their errors mostly cancel in u - 1 / log u,
#   and the divide, product and sum once each: 4 units (measured 2.5)
# log1p (Goldberg, "What every computer scientist...", Theorem 4): <= 5 units (measured 3.0)
# sinh, cosh: exp(|x| / 2) once, doubled by squaring, the product and the sum once: 4 units
#   (measured 2.9, 3.2); elu is expm1's bound (measured 2.5)
SMOOTH = {"expm1": (torch.expm1, -20, 20, 4), "log1p": (torch.log1p, -0.999, 1e4, 5),
          "log2": (torch.log2, 1e-3, 1e4, 3), "log10": (torch.log10, 1e-3, 1e4, 3),
          "sinh": (torch.sinh, -89, 89, 4), "cosh": (torch.cosh, -89, 89, 4),
          "elu": (torch.nn.functional.elu, -20, 20, 4)}


def _spread(lo: float, hi: float) -> np.ndarray:
    """A linear grid of [lo, hi] and tiny magnitudes of the sign(s) in it."""
    tiny = np.geomspace(1e-30, 1e-2, 1024)
    x = np.concatenate([np.linspace(lo, hi, 4096), tiny, -tiny if lo < 0 else tiny])
    return x.astype(np.float32).reshape(4, -1)


@pytest.mark.parametrize("op", sorted(SMOOTH))
def test_smooth_ops_within_their_bounds(op: str):
    fn, lo, hi, units = SMOOTH[op]
    x = _spread(lo, hi)
    exact = _torch64(fn, x)
    rel = np.abs(_chip(op, x) - exact) / np.abs(exact)
    assert np.nanmax(rel[exact != 0]) <= units * ULP1
    assert (_chip(op, x)[exact == 0] == 0).all()
    np.testing.assert_allclose(_ref(op, x.astype(np.float64)), exact, rtol=1e-14, atol=0)


@pytest.mark.parametrize("op", sorted(SMOOTH))
def test_smooth_ops_edge_values(op: str):
    """inf and NaN as PyTorch's fp32 kernel gives them; finite results within the bound
    (sinh and cosh stay finite up to 89.4, where PyTorch's fp32 kernel overflows at 88.7)."""
    fn, _, _, units = SMOOTH[op]
    x = np.concatenate([EDGES, [-1.0001, 88.9, -88.9, 89.4]]).astype(np.float32)[None, :]
    y, exact = _chip(op, x), _torch64(fn, x)
    exact = np.where(np.abs(exact) > 3.4028235e38, np.copysign(np.inf, exact), exact)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(exact))
    np.testing.assert_array_equal(y[np.isinf(exact)], exact[np.isinf(exact)])
    finite = np.isfinite(exact) & (exact != 0)
    assert (np.abs(y - exact)[finite] <= units * ULP1 * np.abs(exact[finite])).all()


class _Elementwise(torch.nn.Module):
    def forward(self, x, i):
        f = torch.nn.functional
        return (x.abs() + x.sign() + x.floor() + x.ceil() + x.trunc() + x.round()
                + torch.round(x, decimals=2) + torch.round(x * 100, decimals=-1)
                + torch.expm1(x) + torch.log1p(x.abs()) + torch.log2(x.abs() + 1)
                + torch.log10(x.abs() + 1) + torch.sinh(x) + torch.cosh(x) + f.elu(x)
                + f.leaky_relu(x, 0.2) + f.hardtanh(x) + f.selu(x),
                torch.isnan(x), torch.isinf(x), i.floor() + i.abs() + i.sign())


def test_elementwise_ops_captured_and_run_on_chip():
    torch.manual_seed(0)
    x, i = torch.randn(4, 8) * 3, torch.randint(-50, 50, (4, 8))
    x[0, :3] = torch.tensor([math.nan, math.inf, -math.inf])
    graph = capture(_Elementwise(), (x, i))
    assert {"floor", "round", "expm1", "elu", "leaky_relu", "isnan"} <= {
        n.op for n in graph.nodes}
    got = ChipRunner(graph, "forge-t1", "fp32")(x, i)
    for g, w in zip(got, _Elementwise()(x, i)):
        w = w.double().numpy()
        np.testing.assert_allclose(g.double().numpy(), w, rtol=1e-5, atol=1e-5)


# ---- trigonometric and inverse hyperbolic ------------------------------------------------------
# units of 2**-24 relative to the exact result; absolute bounds where the result crosses 0
# sin, cos: the Cody-Waite reduction is exact to a few 1e-15 for |x| <= 8192 (h * PI_HI and
#   h * PI_MID exact), so the error is the reduced series': r's rounding, the series' (<= 2
#   units), the sign product: |err| <= 2 units of max(|sin|, 2**-... ) -> absolute 1.1e-7
#   (measured 1.03e-7 up to 8192), and relative 2 units where |x| is small (measured 1.8)
# tan = sin / cos: both within 2 units relative, the division once: 5 units (measured 3.3)
# atan (cephes atanf: polynomial error ~1e-7 relative), the reduction's divide, the sum with
#   pi/4: 3 units (measured 1.9); asin, acos: atan's 3 and the argument's 1.5: 5 (3.5, 3.6)
# asinh, acosh, atanh: log1p's 5 units (Goldberg) and its argument's rounding, damped by
#   log1p's derivative: 5 units (measured 2.7, 2.9, 2.9); atan2: atan's 3 and y / x: 4 (2.5)
TRIG = {"sin": (torch.sin, -8192, 8192, 2), "cos": (torch.cos, -8192, 8192, 2),
        "tan": (torch.tan, -10, 10, 5), "atan": (torch.atan, -100, 100, 3),
        "asin": (torch.asin, -1, 1, 5), "acos": (torch.acos, -1, 1, 5),
        "asinh": (torch.asinh, -1e5, 1e5, 5), "acosh": (torch.acosh, 1, 1e5, 5),
        "atanh": (torch.atanh, -1, 1, 5)}


@pytest.mark.parametrize("op", sorted(TRIG))
def test_trig_ops_within_their_bounds(op: str):
    fn, lo, hi, units = TRIG[op]
    x = np.concatenate([np.linspace(lo, hi, 4096), np.linspace(max(lo, -4), min(hi, 4), 2048),
                        [lo, hi]])
    tiny = np.geomspace(1e-30, 1e-2, 1024)
    x = np.concatenate([x, tiny, -tiny if lo < 0 else 1 + tiny]).astype(np.float32)[None, :]
    exact = _torch64(fn, x)
    err = np.abs(_chip(op, x) - exact)
    # sin and cos: relative near their zeros' neighbourhood of 0, absolute for large |x|
    scale = np.where(np.abs(x) > 4, 1.0, np.abs(exact)) if op in ("sin", "cos") else \
        np.abs(exact)
    finite = np.isfinite(exact) & (exact != 0)
    assert (err[finite] <= units * ULP1 * scale[finite]).all()
    assert (err[exact == 0] == 0).all()
    np.testing.assert_allclose(_ref(op, x.astype(np.float64)), exact, rtol=1e-14, atol=1e-300)


def test_sin_cos_beyond_their_range_are_nan_not_wrong():
    """|error| grows past 16384 (1e-6 at 65536, 0.03 at 2**20): beyond 65536 the chip gives
    NaN; up to it, within 1e-6."""
    x = np.concatenate([np.linspace(16384, 65536, 2048), [65536.0, 65540.0, 1e6, 3e9, 1e30,
                                                           -1e30]]).astype(np.float32)
    x = np.concatenate([x, -x])[None, :]
    for op, fn in (("sin", torch.sin), ("cos", torch.cos), ("tan", torch.tan)):
        y, exact = _chip(op, x), _torch64(fn, x)
        inside = np.abs(x) <= 65536
        np.testing.assert_array_equal(np.isnan(y), ~inside)
        if op != "tan":
            assert np.abs(y - exact)[inside].max() <= 1e-6


@pytest.mark.parametrize("op", sorted(TRIG))
def test_trig_ops_edge_values(op: str):
    fn, _, hi, units = TRIG[op]
    x = EDGES[(np.abs(EDGES) <= 65536) | ~np.isfinite(EDGES)] \
        if op in ("sin", "cos", "tan") else EDGES
    x = np.concatenate([x, [1.0, -1.0, 1.0000001, -1.0000001]]).astype(np.float32)[None, :]
    y = _chip(op, x)
    want = fn(torch.from_numpy(x)).double().numpy()  # PyTorch's fp32 kernel
    exact = _torch64(fn, x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(y[np.isinf(want)], want[np.isinf(want)])
    finite = np.isfinite(exact) & (exact != 0)
    assert (np.abs(y - exact)[finite] <= units * ULP1 * np.abs(exact[finite])).all()


def test_atan2_random_and_edges():
    rng = np.random.default_rng(2)
    y, x = (rng.standard_normal((2, 4, 256)) * np.exp(rng.uniform(-10, 10, (2, 4, 256)))
            ).astype(np.float32)
    exact = torch.atan2(torch.from_numpy(y).double(), torch.from_numpy(x).double()).numpy()
    assert (np.abs(_chip("atan2", y, x) - exact) <= 4 * ULP1 * np.abs(exact)).all()
    np.testing.assert_allclose(_ref("atan2", y.astype(np.float64), x.astype(np.float64)),
                               exact, rtol=1e-15)
    # broadcasting a row, and the edge values PyTorch's kernel agrees on (signed zeros and
    # a finite value over an infinite one are documented differences)
    e = np.array([0.0, 1.0, -1.0, INF, -INF, NAN, 1e-30, -3e38], np.float32)
    ys, xs = np.meshgrid(e, e)
    got = _chip("atan2", ys.astype(np.float32), xs.astype(np.float32))
    want = torch.atan2(torch.from_numpy(ys), torch.from_numpy(xs)).double().numpy()
    agree = ~((ys == 0) & (xs <= 0))  # signed zeros aside
    np.testing.assert_allclose(got[agree], want[agree], rtol=3 * ULP1, atol=3e-9)
    row = _chip("atan2", y[0], x[0, :1])
    np.testing.assert_allclose(row, np.arctan2(y[0], x[0, :1]).astype(np.float64), rtol=4 * ULP1)


class _Trig(torch.nn.Module):
    def forward(self, x):
        t = torch.tanh(x)
        return (torch.sin(x) + torch.cos(x) + torch.tan(t) + torch.atan(x) + torch.asin(t)
                + torch.acos(t) + torch.asinh(x) + torch.acosh(x.abs() + 1) + torch.atanh(t)
                + torch.atan2(x, t + 2))


def test_trig_ops_captured_and_run_on_chip():
    torch.manual_seed(0)
    x = torch.randn(4, 16) * 2
    graph = capture(_Trig(), (x,))
    assert {"sin", "cos", "atan2", "acosh"} <= {n.op for n in graph.nodes}
    got = ChipRunner(graph, "forge-t1", "fp32")(x)[0].double().numpy()
    np.testing.assert_allclose(got, _Trig()(x).double().numpy(), rtol=1e-5, atol=1e-5)


# ---- remainders, tensor powers, clamp with tensor bounds, xor -----------------------------------


@pytest.mark.parametrize("op, fn", [("fmod", torch.fmod), ("remainder", torch.remainder)])
def test_fmod_remainder_exact_below_two_to_the_24(op: str, fn):
    """Exact (every bit as PyTorch's fp32 kernel) while |a / b| < 2**24, for floats whose
    quotient rounds across an integer too (1 % 0.1, 0.3 % 0.1), and for integers."""
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((4, 256)) * 100).astype(np.float32)
    b = (rng.standard_normal((4, 256)) * np.exp(rng.uniform(-3, 3, (4, 256)))).astype(np.float32)
    a[0, :8] = [0.3, -0.3, 0.3, -0.3, 1.0, 7.0, -7.0, 0.7]
    b[0, :8] = [0.1, 0.1, -0.1, -0.1, 0.1, 0.7, 0.7, 0.1]
    assert np.abs(a / b).max() < 2**24
    want = fn(torch.from_numpy(a), torch.from_numpy(b)).double().numpy()
    np.testing.assert_array_equal(_chip(op, a, b), want)
    exact = fn(torch.from_numpy(a).double(), torch.from_numpy(b).double()).numpy()
    np.testing.assert_array_equal(_ref(op, a.astype(np.float64), b.astype(np.float64)), exact)
    ai = rng.integers(-2**23, 2**23, (4, 256))
    bi = rng.integers(1, 1000, (4, 256)) * rng.choice([-1, 1], (4, 256))
    got = ChipRunner(_graph(op, [(4, 256)] * 2, "int32"), "forge-t1", "fp32")(
        torch.from_numpy(ai), torch.from_numpy(bi))[0].numpy()
    np.testing.assert_array_equal(got, fn(torch.from_numpy(ai), torch.from_numpy(bi)).numpy())
    # a column of divisors (broadcast), and inf / NaN
    e = np.array([[0.0, 1.0, -1.0, 3.5, INF, -INF, NAN]], np.float32)
    col = np.array([[2.0], [-0.75], [0.0], [NAN]], np.float32)
    got = _chip(op, np.repeat(e, 4, 0), col)
    want = fn(torch.from_numpy(e), torch.from_numpy(col)).double().numpy()
    np.testing.assert_array_equal(got, want)


class _Powers(torch.nn.Module):
    def forward(self, x, y, k):
        return (torch.pow(x, y), torch.pow(2.0, y), torch.clamp(x, y - 1, y + 1),
                torch.clamp(x, min=y), torch.fmod(k, 7), torch.remainder(k, -5))


def test_pow_tensor_exponent_clamp_tensor_bounds_int_remainder():
    """pow with a tensor exponent: relative error <= (|y log|x|| + 6) * 2**-24 (exp's
    argument y log|x| rounds once; measured 5.1 units beyond it); NaN where PyTorch's is
    (negative base, non-integral exponent); the signs of odd integer powers."""
    torch.manual_seed(0)
    x = torch.randn(4, 64) * 3
    y = torch.randn(4, 64) * 3
    y[:2] = y[:2].round()
    k = torch.randint(-100, 100, (4, 64))
    graph = capture(_Powers(), (x, y, k))
    assert {"pow_tensor", "fmod", "remainder", "maximum", "minimum"} <= {
        n.op for n in graph.nodes}
    got = ChipRunner(graph, "forge-t1", "fp32")(x, y, k)
    want = _Powers()(x, y, k)
    exact = torch.pow(x.double(), y.double()).numpy()
    p = got[0].double().numpy()
    np.testing.assert_array_equal(np.isnan(p), np.isnan(exact))
    ok = np.isfinite(exact) & (exact != 0)
    bound = (np.abs(y.double() * x.abs().double().log()).numpy() + 6) * ULP1
    assert (np.abs(p - exact)[ok] <= bound[ok] * np.abs(exact[ok])).all()
    two = torch.pow(2.0, y.double()).numpy()
    assert (np.abs(got[1].double().numpy() - two) <= (np.abs(y.numpy()) + 6) * ULP1 * two).all()
    for g, w in zip(got[2:], want[2:]):
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_pow_tensor_edge_values():
    e = np.array([0.0, 1.0, -1.0, 2.0, -2.0, 0.5, 3.0, -3.0, INF, -INF, NAN], np.float32)
    xs, ys = (v.astype(np.float32) for v in np.meshgrid(e, e))
    got = _chip("pow_tensor", xs, ys)
    want = torch.pow(torch.from_numpy(xs), torch.from_numpy(ys)).double().numpy()
    # documented differences: NaN ** 0 and 1 ** NaN (PyTorch: 1), (-inf) ** 0.5 (PyTorch inf)
    differ = (np.isnan(xs) & (ys == 0)) | ((xs == 1) & np.isnan(ys)) | ((xs == -INF) & (ys == 0.5))
    np.testing.assert_allclose(got[~differ], want[~differ], rtol=8 * ULP1, atol=0)
    assert np.isnan(got[differ]).all()


def _xor_masks(a, b):
    return torch.logical_xor(a > 0, b > 0).float() + torch.bitwise_xor(a < 0, b < 0).float()


def test_xor_of_masks_in_the_training_capture():
    from torch.fx.experimental.proxy_tensor import make_fx

    from chipforge.compiler import capture_fx

    a, b = torch.randn(4, 16), torch.randn(4, 16)
    a[0, :4], b[0, :4] = torch.tensor([0.0, 1.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0, 1.0])
    gm = make_fx(_xor_masks)(a, b)
    graph, _ = capture_fx(gm, (a, b), name="xor")
    got = ChipRunner(graph, "forge-t1", "fp32")(a, b)[0]
    np.testing.assert_array_equal(got.numpy(), _xor_masks(a, b).numpy())


class _IntXor(torch.nn.Module):
    def forward(self, k):
        return torch.bitwise_xor(k, 3)


class _IntModZero(torch.nn.Module):
    def forward(self, k):
        return torch.remainder(k, torch.tensor([1, 0, 2]))


def test_integer_xor_and_constant_zero_divisor_are_refused_by_name():
    from chipforge.compiler import CompileError

    k = torch.randint(0, 9, (2, 3))
    with pytest.raises(CompileError, match=r"aten\.bitwise_xor.*test_aten_math.py:\d+ .*"
                                           r"bool tensors \(masks\) only"):
        capture(_IntXor(), (k,))
    with pytest.raises(CompileError, match=r"aten\.remainder.*integer division by zero"):
        capture(_IntModZero(), (k,))


@pytest.mark.parametrize("op", ["gelu_erf", "sin", "floor", "remainder", "pow_tensor"])
def test_timing_model_agrees_with_the_simulator(op: str):
    """The engine's row-kernel model, charged the sequence's passes (machine
    MATH_SEQUENCES), within 1% of the simulated cycles (measured <= 0.4%)."""
    from chipforge.compiler import agreement

    arity = MATH_OPS[op].arity
    rng = np.random.default_rng(4)
    inputs = {f"x{i}": rng.standard_normal((64, 512)).astype(np.float32) + 3 * i
              for i in range(arity)}
    (result,) = agreement(_graph(op, [(64, 512)] * arity), "forge-t1", inputs)
    assert abs(result.error) < 0.01


def test_rows_longer_than_the_local_sram_are_cut():
    """forge-i1's 4 MiB local SRAM holds no 100,000-element row of remainder's operands and
    15 registers: the elementwise kernel cuts it into rows of a divisor of its length."""
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal((2, 2, 100_000)) * 5 + [[[0]], [[1]]]).astype(np.float32)
    runner = ChipRunner(_graph("remainder", [a.shape, b.shape]), "forge-i1", "fp32")
    got = runner(torch.from_numpy(a), torch.from_numpy(b))[0].numpy()
    np.testing.assert_array_equal(got, torch.remainder(torch.from_numpy(a),
                                                       torch.from_numpy(b)).numpy())
