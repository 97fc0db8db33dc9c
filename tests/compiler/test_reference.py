"""reference(): float64 evaluation of a KernelGraph against hand-computed numpy (and, for conv and
pooling, torch in float64); quantize and cast rounding against exact expectations."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import pytest

from chipforge.compiler import CompileError, KernelGraph, KernelNode, reference
from chipforge.compiler.lower._reference import round_to_format


def _graph(op: str, in_shapes, out_shape, out_dtype="fp32", in_dtypes=None, **attrs):
    """A one-node graph ``y = op(x0, x1, ...)``."""
    g = KernelGraph(name=op)
    for i, shape in enumerate(in_shapes):
        g.add_tensor(f"x{i}", shape, (in_dtypes or ["fp32"] * len(in_shapes))[i])
        g.inputs.append(f"x{i}")
    g.add_tensor("y", out_shape, out_dtype)  # add_node's own ``shape`` parameter would
    g.nodes.append(KernelNode(op, tuple(g.inputs), "y", tuple(sorted(attrs.items()))))  # clash
    g.outputs.append("y")
    return g


def _run(g: KernelGraph, *arrays) -> np.ndarray:
    return reference(g, {f"x{i}": a for i, a in enumerate(arrays)})["y"]


# ---- quantize and cast ---------------------------------------------------------------------


def test_quantize_int8_round_half_even_and_saturate():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, 300.0, -128.5, -300.0])
    y = _run(_graph("quantize", [x.shape], x.shape, "int8", scale=1.0, zero_point=0), x)
    assert y.dtype == np.int64
    assert y.tolist() == [0, 2, 2, 0, -2, -2, 126, 127, 127, -128, -128]


def test_quantize_int8_scale_and_zero_point():
    x = np.array([0.25, 0.75, -1.0, 100.0])  # / 0.5 + 3 -> 3.5, 4.5, 1, 203
    y = _run(_graph("quantize", [x.shape], x.shape, "int8", scale=0.5, zero_point=3), x)
    assert y.tolist() == [4, 4, 1, 127]


def test_quantize_fp8_e4m3_ties_subnormals_and_saturation():
    tiny = 2.0**-9  # the smallest e4m3 subnormal
    x = np.array([1.0625, 1.1875, 0.5 * tiny, 1.5 * tiny, 464.0, 1e6, -1e6, 448.0])
    y = _run(_graph("quantize", [x.shape], x.shape, "fp8_e4m3", scale=1.0, zero_point=0), x)
    assert y.dtype == np.float64
    assert y.tolist() == [1.0, 1.25, 0.0, 2 * tiny, 448.0, 448.0, -448.0, 448.0]


def test_quantize_fp8_e5m2_saturates_instead_of_inf():
    x = np.array([57344.0, 1e9, -1e9, 3.0])
    y = _run(_graph("quantize", [x.shape], x.shape, "fp8_e5m2", scale=1.0, zero_point=0), x)
    assert y.tolist() == [57344.0, 57344.0, -57344.0, 3.0]


@pytest.mark.parametrize(("dtype", "ml"), [("bf16", ml_dtypes.bfloat16),
                                           ("fp8_e4m3", ml_dtypes.float8_e4m3fn),
                                           ("fp8_e5m2", ml_dtypes.float8_e5m2),
                                           ("fp16", np.float16)])
def test_round_to_format_matches_ml_dtypes(dtype, ml):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(4000) * s for s in (1e-6, 1e-3, 1, 30, 300)])
    x = x.astype(np.float32)  # f32 -> format casts are single roundings in ml_dtypes
    expected = x.astype(ml).astype(np.float64)
    np.testing.assert_array_equal(round_to_format(x.astype(np.float64), dtype), expected)


def test_cast_overflow_and_to_integer():
    x = np.array([1e6, -1e6, 2.7, -2.7])
    to_e4m3 = _run(_graph("cast", [x.shape], x.shape, "fp8_e4m3"), x)
    assert np.isnan(to_e4m3[:2]).all() and to_e4m3[2:].tolist() == [2.75, -2.75]
    assert _run(_graph("cast", [x.shape], x.shape, "fp8_e5m2"), x)[:2].tolist() == [np.inf,
                                                                                     -np.inf]
    assert _run(_graph("cast", [x.shape], x.shape, "int8"), x).tolist() == [127, -128, 2, -2]
    ints = np.array([3, -4])
    assert _run(_graph("cast", [(2,)], (2,), "fp32", ["int32"]), ints).tolist() == [3.0, -4.0]


# ---- arithmetic and normalization ------------------------------------------------------------


def test_binary_scalar_broadcast_and_integer_tensors():
    a, b = np.arange(6.0).reshape(2, 3), np.array([1.0, 2.0, 4.0])
    assert _run(_graph("div", [(2, 3), (3,)], (2, 3)), a, b).tolist() == (a / b).tolist()
    assert _run(_graph("sub", [(2, 3)], (2, 3), scalar=1.5), a).tolist() == (a - 1.5).tolist()
    y = _run(_graph("add", [(3,), (3,)], (3,), "int32", ["int32", "int32"]), [1, 2, 3], [4, 5, 6])
    assert y.dtype == np.int64 and y.tolist() == [5, 7, 9]


def test_unary_ops():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    expect = {"relu": np.maximum(x, 0), "gelu": gelu, "silu": x / (1 + np.exp(-x)),
              "sigmoid": 1 / (1 + np.exp(-x)), "square": x * x, "neg": -x, "tanh": np.tanh(x)}
    for op, want in expect.items():
        np.testing.assert_allclose(_run(_graph(op, [x.shape], x.shape), x), want, rtol=1e-15)


def test_reductions_keep_the_last_dim():
    x = np.array([[1.0, 5.0, 3.0], [-1.0, -2.0, -4.0]])
    assert _run(_graph("sum", [x.shape], (2, 1)), x).tolist() == [[9.0], [-7.0]]
    assert _run(_graph("max", [x.shape], (2, 1)), x).tolist() == [[5.0], [-1.0]]
    assert _run(_graph("mean", [x.shape], (2, 1)), x).tolist() == [[3.0], [-7 / 3]]


def test_softmax_layernorm_rmsnorm():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, -np.inf]])
    e = np.exp([-3.0, -2.0, -1.0, 0.0])
    np.testing.assert_allclose(_run(_graph("softmax", [x.shape], x.shape), x),
                               [e / e.sum(), [1 / 3, 1 / 3, 1 / 3, 0.0]], rtol=1e-15)
    x, w, b = np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([1.0, 2.0, 1.0, 1.0]), np.ones(4)
    ln = _run(_graph("layernorm", [(1, 4), (4,), (4,)], (1, 4), eps=1e-5), x, w, b)
    # mean 2.5, variance 1.25 (biased)
    np.testing.assert_allclose(ln, (x - 2.5) / np.sqrt(1.25 + 1e-5) * w + b, rtol=1e-15)
    rms = _run(_graph("rmsnorm", [(1, 4), (4,)], (1, 4), eps=1e-6), x, w)
    np.testing.assert_allclose(rms, x / np.sqrt(7.5 + 1e-6) * w, rtol=1e-15)  # mean x^2 = 7.5


def test_matmul_broadcasts_batch_dims():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((5, 6))
    np.testing.assert_allclose(_run(_graph("matmul", [a.shape, b.shape], (2, 3, 4, 6)), a, b),
                               np.einsum("xymk,kn->xymn", a, b), rtol=1e-13)


# ---- layout, embedding, convolution, pooling ---------------------------------------------


def test_layout_ops():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert _run(_graph("reshape", [x.shape], (6, 4), shape=(6, 4)), x).shape == (6, 4)
    np.testing.assert_array_equal(
        _run(_graph("permute", [x.shape], (4, 2, 3), dims=(2, 0, 1)), x), x.transpose(2, 0, 1))
    np.testing.assert_array_equal(
        _run(_graph("slice", [x.shape], (2, 3, 2), dim=2, start=1, end=4, step=2), x),
        x[:, :, 1:4:2])
    np.testing.assert_array_equal(
        _run(_graph("cat", [x.shape, x.shape], (2, 6, 4), dim=1), x, -x),
        np.concatenate([x, -x], 1))
    np.testing.assert_array_equal(
        _run(_graph("expand", [(3, 1)], (2, 3, 4), shape=(2, 3, 4)), np.arange(3.0)[:, None]),
        np.broadcast_to(np.arange(3.0)[:, None], (2, 3, 4)))


def test_embedding_gathers_rows():
    table, idx = np.arange(12.0).reshape(4, 3), np.array([[3, 0], [1, 1]])
    y = _run(_graph("embedding", [(4, 3), (2, 2)], (2, 2, 3), in_dtypes=["fp32", "int32"]),
             table, idx)
    np.testing.assert_array_equal(y, table[idx])
    g = _graph("embedding", [(4, 3), (1,)], (1, 3), in_dtypes=["fp32", "int32"])
    with pytest.raises(CompileError, match=r"index 4\.\.4 outside the table.s rows 0\.\.3"):
        _run(g, table, np.array([4]))


def test_conv2d_and_max_pool_match_torch_in_float64():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 3))
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=(1, 2), groups=2)
    g = _graph("conv2d", [x.shape, w.shape], tuple(want.shape), stride=(2, 2), padding=(1, 2),
               groups=2)
    np.testing.assert_allclose(_run(g, x, w), want.numpy(), rtol=1e-12, atol=1e-12)
    want = F.max_pool2d(torch.from_numpy(x), 3, stride=2, padding=1)
    g = _graph("max_pool2d", [x.shape], tuple(want.shape), kernel=(3, 3), stride=(2, 2),
               padding=(1, 1))
    np.testing.assert_array_equal(_run(g, x), want.numpy())
    g = _graph("global_avg_pool2d", [x.shape], (2, 4, 1, 1))
    np.testing.assert_allclose(_run(g, x), x.mean(axis=(2, 3), keepdims=True), rtol=1e-14)


# ---- errors ---------------------------------------------------------------------------------


def test_input_errors():
    g = _graph("relu", [(2, 2)], (2, 2))
    with pytest.raises(CompileError, match=r"reference: inputs \[\]; graph 'relu' expects"):
        reference(g, {})
    with pytest.raises(CompileError, match=r"tensor 'x0' has shape \(3,\); the graph declares"):
        _run(g, np.zeros(3))


def test_reference_works_without_torch():
    script = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None
        import numpy as np
        from chipforge.compiler import KernelGraph, reference
        g = KernelGraph()
        g.add_tensor("x", (2,), "fp32"); g.inputs.append("x")
        g.add_node("relu", ["x"], "y", (2,), "fp32"); g.outputs.append("y")
        print(reference(g, {"x": np.array([-1.0, 2.0])})["y"].tolist())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[0.0, 2.0]\n"
