"""Edges of the capture and lowering against PyTorch: division with rounding modes (``//``,
``torch.div(..., rounding_mode=...)``) and the chip's integer ``div`` truncating like the
reference (it once rounded to nearest: 7 / 2 gave 4); an int64 input beyond int32 (an error,
not a wrap); strided slices of the last dim; a lowering error naming the user's line."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chipforge.compiler import ChipRunner, KernelGraph, capture, reference  # noqa: E402


class _Divisions(torch.nn.Module):
    def forward(self, a, b):
        return (torch.div(a, b, rounding_mode="floor"), torch.div(a, b, rounding_mode="trunc"),
                a // 3, torch.div(a.float(), b.float(), rounding_mode="floor"))


def _operands():
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-5000, 5000, (4, 33), generator=gen)
    a[0, :4] = torch.tensor([7, -7, 31, -3])  # halves: where round-to-nearest and floor differ
    sign = torch.where(torch.rand(4, 33, generator=gen) > 0.5, 1, -1)
    b = torch.randint(1, 50, (4, 33), generator=gen) * sign
    b[0, :4] = torch.tensor([2, 2, 2, 2])
    return a, b


def test_rounding_modes_match_torch_in_reference_and_on_chip():
    a, b = _operands()
    graph = capture(_Divisions(), (a, b))
    want = _Divisions()(a, b)
    ref = reference(graph, {"a": a.numpy(), "b": b.numpy()})
    got = ChipRunner(graph, "forge-i1", "fp32")(a, b)
    for name, w, g in zip(graph.outputs, want, got):
        np.testing.assert_array_equal(ref[name], w.numpy())
        np.testing.assert_array_equal(np.asarray(g, np.float64), w.double().numpy())


def test_integer_div_kernel_truncates_toward_zero():
    graph = KernelGraph(name="idiv")
    for name in ("a", "b"):
        graph.add_tensor(name, (1, 6), "int32")
        graph.inputs.append(name)
    graph.add_node("div", ("a", "b"), "q", (1, 6), "int32")
    graph.outputs.append("q")
    a = np.array([[31, 7, -3, -7, 9, 0]], np.int32)
    b = np.array([[2, 2, 2, 2, -4, 5]], np.int32)
    want = np.array([[15, 3, -1, -3, -2, 0]])  # C's / on integers: toward zero
    np.testing.assert_array_equal(reference(graph, {"a": a, "b": b})["q"], want)
    (got,) = ChipRunner(graph, "forge-i1", "fp32")(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_array_equal(np.asarray(got), want)


def test_int64_input_beyond_int32_is_an_error_not_a_wrap():
    from chipforge.compiler import CompileError, feed

    graph = capture(_Divisions(), _operands())
    a, b = _operands()
    a[0, 0] = 2**31
    with pytest.raises(CompileError, match=r"input a: integer values from .* to 2147483648 do "
                                           r"not fit int32"):
        feed(graph, (a, b))


class _Strided(torch.nn.Module):
    def forward(self, x):
        return x[..., ::2] * 2, x[:, 1:7:3], x.unsqueeze(-1)[:, ::3]


def test_strided_slice_of_the_last_dim_runs_on_chip():
    """The slice kernel cannot stride the last dim; the capture gathers those elements."""
    x = torch.randn(4, 9, generator=torch.Generator().manual_seed(1))
    graph = capture(_Strided(), (x,))
    for want, got in zip(_Strided()(x), ChipRunner(graph, "forge-i1", "fp32")(x)):
        np.testing.assert_array_equal(np.asarray(got).reshape(want.shape), want.numpy())


def test_a_lowering_error_names_the_users_line():
    from chipforge.compiler import CompileError, compile_graph

    graph = capture(_Strided(), (torch.randn(4, 9),))
    node = next(n for n in graph.nodes if n.source)
    graph.nodes[graph.nodes.index(node)] = type(node)("slice", node.inputs, node.output,
                                                      (("dim", 1), ("end", 9), ("start", 0),
                                                       ("step", 2)), node.source)
    with pytest.raises(CompileError, match=r"strided slice of the last dim is not supported "
                                           r"\(from .*test_capture_edges.py:\d+ "):
        compile_graph(graph, "forge-i1", dtype="fp32")
