"""Training capture: capture_fx() of aot_autograd's forward and backward graphs of the zoo's
training wrappers, evaluated with reference(), against torch's loss and autograd gradients;
the ops autograd adds (comparisons, masks, where, scatters) against torch one by one; the
new kernel ops' reference() semantics against numpy by hand.

The forward graph is fed the very tensors torch.compile passes it (parameters and buffers
included, recorded at run time); the backward graph is fed the forward graph's reference()
outputs (the saved activations) and the tangent 1.0, so forward and backward are chained in
float64 as the chip would chain them. Tolerance as in test_frontend: float64 reference vs
float32 torch, max|ref - torch| <= 1e-5 * max|torch| per gradient (the loss: rtol 1e-5).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import zoo  # noqa: E402
from torch.fx.experimental.proxy_tensor import make_fx  # noqa: E402

from chipforge.compiler import (  # noqa: E402
    KERNEL_OPS,
    CompileError,
    KernelGraph,
    KernelNode,
    arrange_outputs,
    capture_fx,
    reference,
    supported_ops,
)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
aten = torch.ops.aten


def _assert_close(got: np.ndarray, want, tol: float = 1e-5):
    want = np.asarray(want.detach().double() if isinstance(want, torch.Tensor) else want)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= tol * np.max(np.abs(want))


def _evaluate(graph: KernelGraph, slots, args) -> list:
    """reference() of a captured FX graph on ``args`` (tensors or arrays), as the FX graph's
    outputs (None in None slots)."""
    feeds = {n: a.detach().numpy() if isinstance(a, torch.Tensor) else a
             for n, a in zip(graph.inputs, args, strict=True)}
    out = reference(graph, feeds)
    return arrange_outputs(slots, [out[n] for n in graph.outputs])


def _compile_and_record(model, inputs) -> dict:
    """Run ``model(*inputs)`` and its backward through torch.compile with a backend that
    captures each aot graph with capture_fx and runs the original graph. Returns "fw" and
    "bw": (graph, slots); "fw_args": the forward's runtime arguments; "params": parameter
    name by data_ptr."""
    from functorch.compile import make_boxed_func
    from torch._decomp import core_aten_decompositions
    from torch._dynamo.backends.common import aot_autograd

    record: dict = {"params": {p.data_ptr(): n for n, p in model.named_parameters()}}

    def compiler(kind: str):
        def compile_(gm, example_inputs):
            record[kind] = capture_fx(gm, example_inputs, name=kind)
            run = make_boxed_func(gm.forward)

            def recorded(args):
                record.setdefault(f"{kind}_args", list(args))
                return run(args)

            recorded._boxed_call = True
            return recorded
        return compile_

    torch._dynamo.reset()
    backend = aot_autograd(fw_compiler=compiler("fw"), bw_compiler=compiler("bw"),
                           decompositions=core_aten_decompositions())
    torch.compile(model, backend=backend, fullgraph=True)(*inputs).backward()
    torch._dynamo.reset()
    return record


@pytest.fixture(scope="module")
def trained():
    """name -> record of _compile_and_record for both training wrappers, compiled once."""
    return {name: _compile_and_record(*factory())
            for name, factory in zoo.TRAIN_FACTORIES.items()}


@pytest.mark.parametrize("name", list(zoo.TRAIN_FACTORIES))
def test_forward_and_backward_match_torch(trained, name):
    record = trained[name]
    model, inputs = zoo.TRAIN_FACTORIES[name]()  # a fresh copy (same weights), run eagerly
    params = dict(model.named_parameters())
    loss = model(*inputs)
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))

    fw, fw_slots = record["fw"]
    fw_out = _evaluate(fw, fw_slots, record["fw_args"])
    assert fw_out[0].shape == () and all(v is not None for v in fw_out)
    np.testing.assert_allclose(fw_out[0], loss.item(), rtol=1e-5)

    bw, bw_slots = record["bw"]
    saved = fw_out[1:]  # aot: the forward returns the loss, then what the backward reads
    bw_out = _evaluate(bw, bw_slots, [*saved, np.ones(())])  # ... and the tangent
    assert len(bw_out) == len(record["fw_args"])
    seen = set()
    for arg, grad in zip(record["fw_args"], bw_out):  # the i-th output: the i-th input's grad
        pname = record["params"].get(arg.data_ptr())
        if pname is None:
            assert grad is None  # tokens, one-hot targets, RoPE tables, mask: no gradient
            continue
        torch.testing.assert_close(arg, params[pname], rtol=0, atol=0)  # same weights
        seen.add(pname)
        _assert_close(grad, grads[pname])
    assert seen == set(params)


def test_graph_inputs_outputs_and_slots(trained):
    fw, fw_slots = trained["gpt_train"]["fw"]
    args = trained["gpt_train"]["fw_args"]
    assert [fw.tensors[n].shape for n in fw.inputs] == [tuple(a.shape) for a in args]
    assert [fw.tensors[n].dtype for n in fw.inputs] == [
        "fp32" if a.is_floating_point() else "int32" for a in args]
    assert fw_slots == tuple(range(len(fw.outputs)))  # no None in the forward
    assert not fw.constants  # parameters and buffers are inputs, nothing is folded
    bw, bw_slots = trained["gpt_train"]["bw"]
    assert bw.tensors[bw.inputs[-1]].shape == ()  # the loss's tangent
    n_params = len(trained["gpt_train"]["params"])
    assert [s for s in bw_slots if s is not None] == list(range(n_params)) == \
        list(range(len(bw.outputs)))
    assert bw_slots.count(None) == len(args) - n_params


def test_node_counts(trained):
    mlp_bw = Counter(n.op for n in trained["mlp_train"]["bw"][0].nodes)
    assert (mlp_bw["le"], mlp_bw["eq"], mlp_bw["matmul"]) == (2, 2, 5)  # relu backward
    gpt_fw = Counter(n.op for n in trained["gpt_train"]["fw"][0].nodes)
    assert (gpt_fw["rmsnorm"], gpt_fw["softmax"], gpt_fw["matmul"], gpt_fw["log"]) == \
        (5, 2, 19, 1)
    gpt_bw = Counter(n.op for n in trained["gpt_train"]["bw"][0].nodes)
    assert (gpt_bw["scatter_add"], gpt_bw["pow"], gpt_bw["matmul"]) == (1, 5, 38)
    assert set(gpt_bw) | set(gpt_fw) <= set(KERNEL_OPS)


# ---- single ops against torch (FX graphs from make_fx, not decomposed) --------------------


def _trace(fn, *args):
    return make_fx(fn, tracing_mode="fake")(*args)


def _check_fx(fn, *args, ops=None):
    gm = _trace(fn, *args)
    graph, slots = capture_fx(gm, args, name="t")
    want = fn(*args)
    got = _evaluate(graph, slots, args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            _assert_close(g, w.double() if w.dtype == torch.bool else w)
    if ops is not None:
        assert Counter(n.op for n in graph.nodes) == ops
    return graph


_X = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
_IDX = torch.tensor([[1, 2, 2], [0, 9, 2]])
_G = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
_BASE = torch.randn(10, 4, generator=torch.Generator().manual_seed(2))


def test_comparisons_and_masks():
    def fn(x, idx):
        m = (x > 0.5) | (x <= -0.5)
        keep = (idx >= 1) & (idx != 9) & ~(idx == 2)
        return (m, keep, x.gt(x[:, :1]), torch.where(m, x, x * 2), torch.where(x < 0, 0.0, x),
                torch.logical_not(x), (x * 0).to(torch.bool), m.float(), None)

    graph = _check_fx(fn, _X, _IDX)
    ops = Counter(n.op for n in graph.nodes)
    assert {op for op in ops if ops[op]} <= {"gt", "ge", "lt", "le", "eq", "mul", "maximum",
                                             "add", "slice", "cat", "reshape", "permute"}


def test_scatters_and_log_softmax():
    def fn(g, idx, base, x):
        return (aten.embedding_dense_backward(g, idx, 10, -1, False),
                aten.embedding_dense_backward(g, idx, 10, 2, False),
                aten.index_put(base, [idx], g, True),
                aten.index_put(torch.zeros(10, 4), [idx], g, True),
                aten.slice_scatter(x, g[0, :, :3], 1, 1, 4),
                aten.slice_scatter(torch.zeros(3, 6), g[0, :, 1:], 1, 2, 5),
                torch.log_softmax(x, 0), torch.log_softmax(x * 100, -1))

    graph = _check_fx(fn, _G, _IDX, _BASE, _X)
    assert Counter(n.op for n in graph.nodes)["scatter_add"] == 4


def test_pow_exponents():
    def fn(x):
        y = x * x + 0.5
        return x**3, y**-1.5, y**0.25, x**1, x**2, y**0.5, y**-0.5, y**-1

    graph = _check_fx(fn, _X)
    assert [n.attr("exponent") for n in graph.nodes if n.op == "pow"] == [3.0, -1.5, 0.25]
    assert {"square", "sqrt", "rsqrt", "reciprocal"} <= {n.op for n in graph.nodes}


def test_no_grad_outputs_and_duplicates():
    def fn(x, idx):
        y = x * 2
        return None, y, x, y, None

    gm = _trace(fn, _X, _IDX)
    graph, slots = capture_fx(gm, (_X, _IDX), name="t")
    assert slots == (None, 0, 1, 2, None)
    assert graph.outputs[1] == graph.inputs[0] and graph.outputs[0] == graph.outputs[2]
    assert graph.tensors[graph.inputs[1]].dtype == "int32"


def test_unsupported_op_in_a_training_capture():
    gm = _trace(lambda x: torch.fft.rfft(x).real, _X)
    with pytest.raises(CompileError, match=r"^unsupported PyTorch op aten._fft_r2c.default at .*"
                                           r"no training handler maps it .*chipforge ops "):
        capture_fx(gm, (_X,), name="t")
    assert set(supported_ops()) <= set(supported_ops(training=True))
    assert {"where", "ge", "index_put"} <= set(supported_ops())


_UNIQUE = torch.tensor([[1, 4, 7], [0, 9, 2]])  # overwriting one row twice is undefined


def test_index_put_without_accumulate_overwrites_rows():
    _check_fx(lambda b, i, v: (aten.index_put(b, [i], v),), _BASE, _UNIQUE, _G)


# ---- reference() of the new kernel ops, by hand ---------------------------------------------


def _graph(op: str, in_shapes, out_shape, in_dtypes=None, **attrs) -> KernelGraph:
    g = KernelGraph(name=op)
    for i, shape in enumerate(in_shapes):
        g.add_tensor(f"x{i}", shape, (in_dtypes or ["fp32"] * len(in_shapes))[i])
        g.inputs.append(f"x{i}")
    g.add_tensor("y", out_shape, "fp32")
    g.nodes.append(KernelNode(op, tuple(g.inputs), "y", tuple(sorted(attrs.items()))))
    g.outputs.append("y")
    return g


def _run(g: KernelGraph, *arrays) -> np.ndarray:
    return reference(g, {f"x{i}": a for i, a in enumerate(arrays)})["y"]


def test_reference_pow():
    x = np.array([2.0, 0.25, 4.0, -2.0, 0.0])
    assert _run(_graph("pow", [(5,)], (5,), exponent=3.0), x).tolist() == [
        8.0, 0.015625, 64.0, -8.0, 0.0]
    y = _run(_graph("pow", [(5,)], (5,), exponent=-1.5), x)
    assert y[:3].tolist() == [2.0**-1.5, 8.0, 0.125] and np.isnan(y[3]) and y[4] == np.inf


def test_reference_comparisons():
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b = np.array([2.0, 2.0, 2.0])
    want = {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b, "eq": a == b}
    for op, w in want.items():
        y = _run(_graph(op, [(2, 3), (3,)], (2, 3)), a, b)
        assert y.dtype == np.float64 and y.tolist() == w.astype(float).tolist()
    tokens = np.array([0, 5, 127, 128])
    y = _run(_graph("lt", [(4,)], (4,), in_dtypes=["int32"], scalar=128), tokens)
    assert y.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert _run(_graph("eq", [(3,)], (3,), scalar=2.0), b).tolist() == [1.0, 1.0, 1.0]


def test_reference_scatter_add_accumulates_duplicates():
    idx = np.array([3, 0, 3, 3, 1])
    rows = np.arange(10.0).reshape(5, 2)
    y = _run(_graph("scatter_add", [(5,), (5, 2)], (4, 2), ["int32", "fp32"], num_rows=4),
             idx, rows)
    assert y.tolist() == [[2.0, 3.0], [8.0, 9.0], [0.0, 0.0], [0.0 + 4 + 6, 1.0 + 5 + 7]]
    with pytest.raises(CompileError, match=r"scatter_add index 0\.\.4 outside the table.s "
                                           r"rows 0\.\.3"):
        _run(_graph("scatter_add", [(2,), (2, 2)], (4, 2), ["int32", "fp32"], num_rows=4),
             np.array([0, 4]), rows[:2])
