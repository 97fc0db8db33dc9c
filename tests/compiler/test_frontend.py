"""PyTorch front end: capture() of every zoo model evaluates (with reference()) to the torch
output; the GPT decode step agrees with prefill; unsupported ops fail with one exact line.

Tolerance: reference() runs in float64, torch in float32, so the gap is torch's float32
rounding, about 1e-7 of the magnitudes involved. Outputs near zero come from cancellation
and carry that absolute error, so the error is measured against the largest output
magnitude: max|ref - torch| <= 1e-5 * max|torch| (observed: below 4e-7).
"""

from __future__ import annotations

import inspect
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import zoo  # noqa: E402

from chipforge.compiler import CompileError, capture, reference, supported_ops  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _run(graph, inputs) -> list[np.ndarray]:
    out = reference(graph, {n: t.numpy() for n, t in zip(graph.inputs, inputs)})
    return [out[n] for n in graph.outputs]


def _assert_close(got: np.ndarray, want, tol: float = 1e-5):
    want = np.asarray(want.detach().double() if isinstance(want, torch.Tensor) else want)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= tol * np.max(np.abs(want))


@pytest.fixture(scope="module")
def captured():
    """name -> (module, example inputs, graph) for every zoo model, captured once."""
    out = {}
    for name, factory in zoo.FACTORIES.items():
        model, inputs = factory()
        out[name] = (model, inputs, capture(model, inputs, name=name))
    return out


@pytest.mark.parametrize("name", list(zoo.FACTORIES))
def test_zoo_capture_matches_torch(captured, name):
    model, inputs, graph = captured[name]
    for sample in [inputs, *zoo.calibration_inputs(name, 2)]:
        with torch.no_grad():
            want = model(*sample)
        want = want if isinstance(want, tuple) else (want,)
        got = _run(graph, sample)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _assert_close(g, w)


@pytest.mark.parametrize("name", list(zoo.FACTORIES))
def test_zoo_graph_signature(captured, name):
    model, inputs, graph = captured[name]
    assert graph.name == name
    assert [graph.tensors[n].shape for n in graph.inputs] == [tuple(t.shape) for t in inputs]
    assert [graph.tensors[n].dtype for n in graph.inputs] == [
        "fp32" if t.is_floating_point() else "int32" for t in inputs]
    for value in graph.constants.values():
        assert value.dtype in (np.float32, np.int32)
    assert set(graph.constants) <= set(graph.tensors)


def test_zoo_node_counts(captured):
    counts = {name: Counter(n.op for n in g.nodes) for name, (_, _, g) in captured.items()}
    assert counts["mlp"] == {"matmul": 3, "add": 3, "relu": 2}
    assert counts["small_cnn"] == {"conv2d": 2, "mul": 2, "add": 5, "relu": 2, "max_pool2d": 1,
                                   "global_avg_pool2d": 1, "reshape": 1, "matmul": 1}
    gpt = counts["gpt_decoder"]
    assert (gpt["rmsnorm"], gpt["softmax"], gpt["silu"], gpt["matmul"]) == (5, 2, 2, 19)
    assert counts["dlrm"]["embedding"] == 5  # 4 tables + the triangle gather


def test_weights_are_folded_constants(captured):
    graph = captured["mlp"][2]
    model = captured["mlp"][0]
    first = graph.nodes[0]
    assert first.op == "matmul" and first.inputs[0] == graph.inputs[0]
    np.testing.assert_array_equal(graph.constants[first.inputs[1]],
                                  model[0].weight.detach().numpy().T)


# ---- decode step vs prefill -------------------------------------------------------------


def _cache_from(ks, positions, seed: int):
    """Caches [L, B, KV, T, hd] holding prefill K/V before each batch's position; noise after
    (the step must ignore it)."""
    g = torch.Generator().manual_seed(seed)
    cache = torch.randn(ks.shape, generator=g) * 10
    for b, p in enumerate(positions):
        cache[:, b, :, :p] = ks[:, b, :, :p]
    return cache


def test_decode_step_matches_prefill():
    gpt, (tokens,) = zoo.gpt_decoder()
    step = zoo.GPTDecodeStep(gpt).eval()
    with torch.no_grad():
        logits, ks, vs = gpt.prefill(tokens)
        for t in range(zoo.CONTEXT):
            positions = torch.tensor([t, (t + 5) % zoo.CONTEXT])
            token = tokens[torch.arange(2), positions][:, None]
            out, k_new, v_new = step(token, _cache_from(ks, positions, t),
                                     _cache_from(vs, positions, 100 + t), positions)
            for b, p in enumerate(positions.tolist()):  # float32 both, summed in other orders
                torch.testing.assert_close(out[b, 0], logits[b, p], rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(k_new[:, b, :, 0], ks[:, b, :, p])
                torch.testing.assert_close(v_new[:, b, :, 0], vs[:, b, :, p])


def test_captured_decode_step_matches_prefill(captured):
    gpt, (tokens,) = zoo.gpt_decoder()
    graph = captured["gpt_decode_step"][2]
    with torch.no_grad():
        logits, ks, vs = gpt.prefill(tokens)
    positions = torch.tensor([3, 11])
    token = tokens[torch.arange(2), positions][:, None]
    got, k_new, _ = _run(graph, (token, _cache_from(ks, positions, 0),
                                 _cache_from(vs, positions, 1), positions))
    _assert_close(got[:, 0], logits[torch.arange(2), positions])
    _assert_close(k_new[:, :, :, 0], ks[:, torch.arange(2), :, positions].permute(1, 0, 2, 3))


# ---- folding and mapping of individual ops ------------------------------------------------


class _Masked(torch.nn.Module):
    """A causal mask built in forward from arange/ones (folded) and applied with where."""

    def forward(self, x):
        s = x.shape[-1]
        keep = torch.ones(s, s).tril().bool() & (torch.arange(s) >= 0)[None, :]
        scores = torch.where(keep, x, float("-inf"))
        return torch.softmax(scores, -1), x.masked_fill(~keep, 0.0) * 2


def test_masks_from_constants_are_folded():
    x = torch.randn(2, 5, 5)
    graph = capture(_Masked(), (x,))
    assert {n.op for n in graph.nodes} <= {"mul", "add", "softmax"}
    want = _Masked()(x)
    for g, w in zip(_run(graph, (x,)), want):
        _assert_close(g, w)


class _Convs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
        self.ln = torch.nn.LayerNorm(5)
        self.act = torch.nn.GELU(approximate="tanh")

    def forward(self, x):
        y = torch.nn.functional.max_pool2d(self.act(self.conv(x)), 2, 1, 1)
        return self.ln(y).sum(dim=(1, 2)), y.mean(dim=(2, 3)), y.amax(1)


def test_conv_pool_layernorm_reductions():
    torch.manual_seed(0)
    model, x = _Convs().eval(), torch.randn(2, 4, 9, 8)
    graph = capture(model, (x,))
    # the grouped conv is im2col + matmul: the conv2d kernel op takes groups = 1 only
    assert {"matmul", "gelu", "max_pool2d", "layernorm", "global_avg_pool2d"} <= {
        n.op for n in graph.nodes}
    with torch.no_grad():
        want = model(x)
    for g, w in zip(_run(graph, (x,)), want):
        _assert_close(g, w)


class _Sdpa(torch.nn.Module):
    def forward(self, q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_sdpa_maps_to_matmul_softmax():
    inputs = tuple(torch.randn(2, 4, 8, 16, generator=torch.Generator().manual_seed(i))
                   for i in range(3))
    graph = capture(_Sdpa(), inputs)
    assert Counter(n.op for n in graph.nodes) == {"mul": 2, "permute": 1, "matmul": 2,
                                                  "add": 1, "softmax": 1}
    _assert_close(_run(graph, inputs)[0], _Sdpa()(*inputs))


# ---- errors ----------------------------------------------------------------------------------

# ops the models need (exact GELU, recommendation and MoE routing, indexing, strided
# copies, layer norm statistics), each from a different handler module
REQUIRED = ("gelu", "erf", "_embedding_bag", "topk", "sort", "cumsum", "gather", "scatter",
            "index", "index_put", "where", "argmax", "native_layer_norm", "as_strided")


class _Rfft(torch.nn.Module):
    def forward(self, x):
        y = x * 2
        return torch.fft.rfft(y).real


class _ErfGelu(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.act = torch.nn.GELU()

    def forward(self, x):
        return self.act(x)


def _where(method, marker: str) -> str:
    """``FILE:LINE `code``` of the line of ``method`` containing ``marker``."""
    lines, first = inspect.getsourcelines(method)
    offset = next(i for i, line in enumerate(lines) if marker in line)
    return f"{__file__}:{first + offset} `{lines[offset].strip()}`"


def test_supported_ops_list():
    names = supported_ops()
    assert names == sorted(set(names))
    assert not [n for n in names if n.startswith("_assert") or n == "_local_scalar_dense"]
    assert set(REQUIRED) <= set(names)


def test_unsupported_op_names_op_line_and_what_to_do():
    with pytest.raises(CompileError) as err:
        capture(_Rfft(), (torch.randn(2, 8),))
    assert str(err.value) == (
        f"unsupported PyTorch op aten._fft_r2c.default at {_where(_Rfft.forward, 'rfft')}: "
        f"no inference handler maps it onto the chip's kernel ops; `chipforge ops --missing` "
        f"lists the Core ATen ops that are not supported and why. Write this line with "
        f"supported ops, or keep it outside the compiled region")
    assert "\n" not in str(err.value)


class _Relu(torch.nn.Module):
    def forward(self, x):
        return torch.where(x > 0, x, 0.0)


def test_comparison_of_computed_values_is_a_mask():
    x = torch.randn(4, 7, generator=torch.Generator().manual_seed(3))
    graph = capture(_Relu(), (x,))
    assert {n.op for n in graph.nodes} >= {"gt"}
    _assert_close(_run(graph, (x,))[0], _Relu()(x))


def test_unsupported_input_dtype():
    with pytest.raises(CompileError, match=r"input x has dtype torch.float64; supported: "):
        capture(_ErfGelu(), (torch.randn(2, 3, dtype=torch.float64),))


def test_nodes_record_the_user_source_line(captured):
    graph = captured["gpt_decoder"][2]
    norm = next(n for n in graph.nodes if n.op == "rmsnorm")
    lines, first = inspect.getsourcelines(zoo.RMSNorm.forward)
    assert norm.source == (f"{zoo.__file__}:{first + len(lines) - 1} `{lines[-1].strip()}` "
                           f"in module blocks.0.attn_norm (RMSNorm)")
