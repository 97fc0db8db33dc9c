"""Masks, indexing and data-dependent ops (``frontend/_aten_index``), each against PyTorch on
the same inputs: through capture() and reference() (float64) for every case, and on the
simulator (ChipRunner) for a representative subset. Edge cases: broadcasting, negative dims
and indices, duplicate indices, ties, int64 indices, +-inf fills."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch._decomp import core_aten_decompositions
from torch.fx.experimental.proxy_tensor import make_fx

from chipforge.compiler import ChipRunner, CompileError, capture, capture_fx, feed, reference


class _Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _expected(fn, args) -> tuple:
    want = fn(*args)
    return want if isinstance(want, tuple) else (want,)


def _compare(got, want) -> None:
    """Exact agreement (the ops here are exact up to fp32 rounding), inf and NaN in place."""
    want = want.detach().to(torch.float64).numpy()
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _check(fn, *args) -> None:
    graph = capture(_Fn(fn), args)
    values = reference(graph, feed(graph, args))
    want = _expected(fn, args)
    assert len(graph.outputs) == len(want)
    for name, w in zip(graph.outputs, want):
        _compare(values[name], w)


def _check_chip(fn, *args, dtype: str = "fp32") -> None:
    graph = capture(_Fn(fn), args)
    got = ChipRunner(graph, "forge-i1", dtype)(*args)
    for g, w in zip(got, _expected(fn, args)):
        _compare(g.numpy(), w)


_G = torch.Generator().manual_seed(0)
X = torch.randn(3, 5, generator=_G)
Y = torch.randn(3, 5, generator=_G)
IDX = torch.randint(0, 5, (3, 2), generator=_G)  # int64, with a duplicate column or two
PERM = torch.stack([torch.randperm(5, generator=_G)[:2] for _ in range(3)])  # no duplicates
TIES = torch.randint(0, 3, (4, 7), generator=_G).float()
TABLE = torch.randn(10, 4, generator=_G)
BAG_IDX = torch.tensor([2, 1, 2, 9, 5, 2, 7])

MASKS = {
    "where": (lambda x: torch.where(x > 0, x, 0.0), X),
    "where_broadcast": (lambda x, y: torch.where(x[:, :1] > y, x, y), X, Y),
    "masked_fill_-inf": (lambda x: x.masked_fill(x > 0.5, float("-inf")), X),
    "masked_fill_+inf": (lambda x: x.masked_fill(x < 0, float("inf")), X),
    "where_inf_both": (lambda x: torch.where(x > 0, float("inf"), float("-inf")), X),
    "logic": (lambda x, y: ((x > 0) & (y <= 1)) | ~(x != y), X, Y),
    "bool_input": (lambda x, m: torch.where(m, x, -x), X, X > 0),
    "to_bool": (lambda x, m: x * m.bool(), X, (X > 0).long()),
    "one_hot": (lambda i: F.one_hot(i, 6), IDX),
}

GATHERS = {
    "gather_dim1": (lambda x, i: torch.gather(x, 1, i), X, IDX),
    "gather_dim-2_smaller": (lambda x, i: torch.gather(x, -2, i), X,
                             torch.randint(0, 3, (2, 4), generator=_G)),
    "index_two_broadcast": (lambda x, i, j: x[i, j], X, torch.tensor([[0], [-1]]),
                            torch.tensor([4, -5, 2])),
    "index_none_slot_negative": (lambda x, i: x[:, i], X, torch.tensor([-1, 0, 3, -5])),
    "index_non_adjacent": (lambda x, i, j: x[i, :, j], torch.randn(3, 4, 5, generator=_G),
                           torch.tensor([[2], [0]]), torch.tensor([1, 4, 1])),
    "index_middle": (lambda x, i, j: x[:, i, j], torch.randn(3, 4, 5, generator=_G),
                     torch.tensor([[3], [0]]), torch.tensor([1, 4, 1])),
    "index_select": (lambda x, i: torch.index_select(x, -1, i), X, torch.tensor([4, 4, 0])),
    "embedding": (lambda w, i: F.embedding(i, w), TABLE, IDX),
}

SCATTERS = {
    "scatter_src": (lambda x, i, s: x.scatter(1, i, s), X, PERM, Y),
    "scatter_value_duplicates": (lambda x, i: x.scatter(1, i, 0.1), X,
                                 torch.tensor([[1, 1], [0, 4], [3, 3]])),
    "scatter_add_duplicates": (lambda x, i, s: x.scatter_add(0, i, s), X,
                               torch.zeros(3, 2, dtype=torch.long), Y),
    "scatter_reduce_sum": (lambda x, i, s: x.scatter_reduce(1, i, s, "sum",
                                                            include_self=False), X, IDX, Y),
    "scatter_reduce_mean": (lambda x, i, s: x.scatter_reduce(1, i, s, "mean"), X, IDX, Y),
    "scatter_reduce_mean_no_self": (lambda x, i, s: x.scatter_reduce(
        1, i, s, "mean", include_self=False), X, IDX, Y),
    "scatter_reduce_amax": (lambda x, i, s: x.scatter_reduce(1, i, s[:, :2], "amax"), X, IDX,
                            Y),
    "scatter_reduce_amin_no_self": (lambda x, i, s: x.scatter_reduce(
        1, i, s[:, :2], "amin", include_self=False), X, IDX, Y),
    "index_put": (lambda x, i, v: x.index_put((i,), v), X, torch.tensor([2, -3]), Y[:2]),
    "index_put_accumulate_duplicates": (lambda x, i, v: x.index_put((i,), v, accumulate=True),
                                        X, torch.tensor([2, 0, 2]), Y),
    "index_put_two_broadcast_value": (lambda x, i, j: x.index_put((i, j), torch.tensor(7.0)),
                                      X, torch.tensor([2, 0]), torch.tensor([-1, 3])),
    "index_put_middle": (lambda x, i, v: x.index_put((torch.tensor([[0], [2]]), i), v,
                                                     accumulate=True),
                         X, torch.tensor([1, 4]), torch.randn(2, 2, generator=_G)),
    "masked_scatter": (lambda x, s: x.masked_scatter(x > 0, s), X, Y),
    "masked_assign_scalar": (lambda x: x.index_put((x > 0.5,), torch.tensor(-1.0)), X),
    "masked_assign_rows": (lambda x, m: x.index_put((m,), torch.arange(5.0)), X, X[:, 0] > 0),
    "masked_accumulate_rows": (lambda x, m, v: x.index_put((m,), v, accumulate=True), X,
                               X[:, 0] > 0, Y[0]),
    "inverse_permutation_into_empty": (lambda p: torch.empty_like(p).index_put(
        (p,), torch.arange(6)), torch.randperm(6, generator=_G)),
    "select_scatter": (lambda x, y: torch.select_scatter(x, y[0], 0, -1), X, Y),
    "slice_scatter_step": (lambda x, y: torch.slice_scatter(x, y[:, :3], 1, 0, 5, 2), X, Y),
}

BAGS = {
    "sum_offsets": (lambda w, i, o: F.embedding_bag(i, w, o, mode="sum"), TABLE, BAG_IDX,
                    torch.tensor([0, 3, 3])),  # an empty bag
    "mean_offsets": (lambda w, i, o: F.embedding_bag(i, w, o, mode="mean"), TABLE, BAG_IDX,
                     torch.tensor([0, 3, 3])),
    "sum_per_sample_weights": (lambda w, i, o, p: F.embedding_bag(
        i, w, o, mode="sum", per_sample_weights=p), TABLE, BAG_IDX, torch.tensor([0, 3, 5]),
        torch.randn(7, generator=_G)),
    "include_last_offset": (lambda w, i, o: F.embedding_bag(
        i, w, o, mode="sum", include_last_offset=True), TABLE, BAG_IDX,
        torch.tensor([0, 3, 5, 6])),
    "mean_padding_idx": (lambda w, i, o: F.embedding_bag(i, w, o, mode="mean", padding_idx=2),
                         TABLE, BAG_IDX, torch.tensor([0, 3, 4])),
    "max": (lambda w, i, o: F.embedding_bag(i, w, o, mode="max"), TABLE, BAG_IDX,
            torch.tensor([0, 3, 3])),
    "bags_2d": (lambda w, i: F.embedding_bag(i, w, mode="mean"), TABLE,
                torch.tensor([[1, 2, 2], [9, 0, 4]])),
}

_BAG = torch.ops.aten._embedding_bag
BAG_OUTPUTS = {  # all four outputs (offset2bag, bag_size, max_indices feed the backward)
    f"all_outputs_mode{mode}_pad{pad}": (
        lambda w, i, o, mode=mode, pad=pad: _BAG(w, i, o, False, mode, False, None, False, pad),
        TABLE, BAG_IDX, torch.tensor([0, 3, 3]))
    for mode in (0, 1, 2) for pad in (-1, 2)}
BAGS.update(BAG_OUTPUTS)

ORDER = {
    "argmax_keepdim": (lambda x: torch.argmax(x, dim=1, keepdim=True), X),
    "argmax_flat": (lambda x: torch.argmax(x), X),
    "argmin_ties": (lambda x: torch.argmin(x, dim=-1), TIES),
    "max_dim_ties": (lambda x: torch.max(x, dim=0), TIES),
    "min_dim_keepdim": (lambda x: torch.min(x, dim=-1, keepdim=True), X),
    "topk": (lambda x: torch.topk(x, 2), X),
    "topk_int64": (lambda i: torch.topk(i, 2, largest=False), torch.tensor([[5, -3, 7, -3, 9]])),
    "sort_int64_descending": (lambda i: torch.sort(i, descending=True, stable=True),
                              torch.tensor([[5, -3, 7, -3, 9, 5]])),
    "argmax_int64": (lambda i: torch.argmax(i, dim=0), IDX),
    "argmax_nan": (lambda x: torch.argmax(x, dim=-1), torch.tensor([[1.0, float("nan"), 3.0,
                                                                     float("nan")], [1, 2, 3, 0]])),
    "max_dim_nan": (lambda x: torch.max(x, dim=0), torch.tensor([[1.0, float("nan")],
                                                                [float("nan"), 0.0]])),
    "topk_smallest_dim0": (lambda x: torch.topk(x, 2, dim=0, largest=False), X),
    "topk_large_k": (lambda x: torch.topk(x, 10, dim=-1), torch.randn(2, 12, generator=_G)),
    "sort_descending": (lambda x: torch.sort(x, dim=-1, descending=True, stable=True), X),
    "sort_stable_ties": (lambda x: torch.sort(x, dim=0, stable=True), TIES),
    "sort_stable_ties_descending": (lambda x: torch.sort(x, descending=True, stable=True),
                                    TIES),
    "argsort": (lambda x: torch.argsort(x, dim=0), X),
    "cumsum": (lambda x: torch.cumsum(x, 1), X),
    "cumsum_dim0": (lambda x: torch.cumsum(x, -2), torch.randn(7, 2, generator=_G)),
    "position_ids": (lambda m: m.cumsum(-1) - 1, torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])),
    "cumsum_bool": (lambda x: (x > 0).cumsum(0), X),
    "cumprod_int64": (lambda i: torch.cumprod(i, 1), torch.randint(-2, 3, (2, 5), generator=_G)),
    "cummax": (lambda x: torch.cummax(x, 1), X),
    "cummin_ties": (lambda x: torch.cummin(x, 0), TIES),
    "cummax_int64": (lambda i: torch.cummax(i, -1), torch.randint(0, 3, (2, 7), generator=_G)),
    "searchsorted_right_ties": (lambda b, v: torch.searchsorted(b, v, right=True),
                                torch.tensor([0.0, 1.0, 1.0, 5.0]),
                                torch.tensor([1.0, -1, 7, 0.5])),
    "searchsorted_batched": (lambda b, v: torch.searchsorted(b, v),
                             torch.sort(torch.randn(2, 5, generator=_G))[0], Y[:2, :3]),
    "bucketize_int64": (lambda v, b: torch.bucketize(v, b), IDX, torch.tensor([1, 3])),
    "median": (lambda x: torch.median(x), X),
    "median_dim_keepdim": (lambda x: torch.median(x, 0, keepdim=True), X),
    "kthvalue": (lambda x: torch.kthvalue(x, 4, dim=-1), X),
    "histc_integers": (lambda e: torch.histc(e, bins=4, min=0, max=3),
                       torch.tensor([3.0, 0, 1, 3, 3, 7, -1, 2])),
    "histc_floats": (lambda x: torch.histc(x, bins=5, min=-1, max=1),
                     torch.tensor([-0.95, -0.5, 0.1, 0.3, 0.99, 1.0, 1.5, -0.1])),
}

_S = torch.tensor(1.5)
_E = torch.randn(0, 3, generator=_G)
EDGES = {  # 0-d tensors and zero-size dims: the result, never a raw error
    "sort_0d": (lambda s: torch.sort(s), _S),
    "topk_0d": (lambda s: torch.topk(s, 1), _S),
    "max_dim_0d": (lambda s: torch.max(s, 0), _S),
    "gather_0d": (lambda s, i: torch.gather(s, 0, i), _S, torch.tensor(0)),
    "scatter_0d": (lambda s, i: s.scatter(0, i, s * 2), _S, torch.tensor(0)),
    "masked_scatter_0d": (lambda s: s.masked_scatter(s > 0, s * 2), _S),
    "topk_k0": (lambda x: torch.topk(x, 0), X),
    "sort_empty": (lambda e: torch.sort(e, dim=0), _E),
    "gather_empty_index": (lambda x, i: torch.gather(x, 1, i), X,
                           torch.zeros(3, 0, dtype=torch.long)),
    "cumsum_empty": (lambda e: torch.cumsum(e, 0), _E),
    "embedding_bag_no_indices": (lambda w, i, o: F.embedding_bag(i, w, o), TABLE,
                                 torch.zeros(0, dtype=torch.long), torch.tensor([0, 0])),
}

_IMAGE = torch.randn(2, 3, 5, 6, generator=_G)
_GRID = torch.rand(2, 4, 7, 2, generator=_G) * 2.4 - 1.2  # some points outside the image
GRIDS = {f"{mode}_{pad}_{'aligned' if aligned else 'unaligned'}": (
    lambda x, g, mode=mode, pad=pad, aligned=aligned: F.grid_sample(
        x, g, mode=mode, padding_mode=pad, align_corners=aligned), _IMAGE, _GRID)
    for mode in ("bilinear", "nearest") for pad in ("zeros", "border") for aligned in (False,
                                                                                       True)}

CASES = {**{f"mask/{k}": v for k, v in MASKS.items()},
         **{f"grid_sample/{k}": v for k, v in GRIDS.items()},
         **{f"edge/{k}": v for k, v in EDGES.items()},
         **{f"gather/{k}": v for k, v in GATHERS.items()},
         **{f"scatter/{k}": v for k, v in SCATTERS.items()},
         **{f"embedding_bag/{k}": v for k, v in BAGS.items()},
         **{f"order/{k}": v for k, v in ORDER.items()}}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_torch_through_reference(name):
    fn, *args = CASES[name]
    _check(fn, *args)


ON_CHIP = ["mask/masked_fill_-inf", "mask/where_broadcast", "gather/gather_dim1",
           "gather/index_select", "scatter/scatter_add_duplicates", "scatter/scatter_src",
           "scatter/index_put", "scatter/masked_scatter", "scatter/scatter_reduce_amax",
           "embedding_bag/mean_offsets", "embedding_bag/max", "order/topk",
           "order/sort_stable_ties", "order/position_ids", "order/argmin_ties",
           "order/argmax_nan", "order/topk_int64", "order/cummin_ties",
           "order/searchsorted_batched", "grid_sample/bilinear_zeros_unaligned"]


@pytest.mark.parametrize("name", ON_CHIP)
def test_op_matches_torch_on_the_simulator(name):
    fn, *args = CASES[name]
    _check_chip(fn, *args)


_WIDE = torch.randn(2, 600, generator=_G).to(torch.bfloat16).float()


@pytest.mark.slow
@pytest.mark.parametrize("dims", [(2, 0, 1), (0, 3, 1, 2), (3, 2, 1, 0), (1, 3, 0, 2)])
def test_a_permutation_moving_the_last_dim_far_runs_on_the_simulator(dims):
    """The permute kernel moves the last dim at most to second-to-last: the capture splits
    any other permutation in two (ConvNeXt's channels-last layer norm back to NCHW)."""
    x = torch.randn(*(2, 3, 4, 5)[:len(dims)], generator=_G)
    _check_chip(lambda v: v.permute(*dims) * 2.0, x)
    _check_chip(lambda v, i: v[..., i], x, torch.tensor([-1, 0]))


def test_argmax_over_a_wide_row_is_exact_in_bf16():
    """Index arithmetic stays int32 whatever the activation dtype (bf16 holds integers
    exactly only up to 256): argmax over 600 columns, against torch on the bf16 values."""
    _check_chip(lambda v: torch.argmax(v, dim=-1), _WIDE, dtype="bf16")


@pytest.mark.slow
def test_max_dim_indices_over_a_wide_row_are_exact_in_bf16():
    _check_chip(lambda v: torch.max(v, dim=-1)[1], _WIDE, dtype="bf16")


def test_embedding_bag_module_with_computed_offsets_on_the_simulator():
    bag = torch.nn.EmbeddingBag(10, 4, mode="sum")
    _check_chip(lambda i, o: bag(i, o), BAG_IDX, torch.tensor([0, 2, 2, 5]))


@pytest.mark.parametrize("computed_offsets", [False, True])
def test_transformers_grouped_mm_matches_torch(computed_offsets):
    """transformers' MoE grouped matmul custom op (Mixtral's default experts path): rows
    sorted by expert times their expert's weight; an expert with no rows."""
    pytest.importorskip("transformers.integrations.moe")
    x, weight = torch.randn(6, 4, generator=_G), torch.randn(3, 4, 5, generator=_G)
    offs = torch.tensor([2, 2, 6], dtype=torch.int32)
    grouped = torch.ops.transformers.grouped_mm_fallback
    if computed_offsets:
        _check(lambda a, w, o: grouped(a, w, offs=o), x, weight, offs)
    else:
        _check(lambda a, w: grouped(a, w, offs=offs), x, weight)


@pytest.mark.parametrize("mode, pad, last, weighted", [
    (0, -1, False, True), (0, 2, True, False), (1, 2, False, False), (1, -1, True, False),
    (2, -1, False, False), (2, 2, False, False)])
def test_embedding_bag_backward_matches_torch(mode, pad, last, weighted):
    """The weight gradient of _embedding_bag (capture_fx, the training capture), from the
    forward's own outputs 1-3 as PyTorch makes them; an empty bag in every case."""
    offsets = torch.tensor([0, 3, 3, 7] if last else [0, 3, 3])  # the last offset is N
    psw = torch.randn(7, generator=_G) if weighted else None
    _, offset2bag, sizes, argmax = torch.ops.aten._embedding_bag(
        TABLE, BAG_IDX, offsets, False, mode, False, psw, last, pad)
    grad = torch.randn(3, 4, generator=_G)

    def backward(g, i, o, o2b, size, top, w):
        return torch.ops.aten._embedding_bag_backward(g, i, o, o2b, size, top, 10, False, mode,
                                                      False, w if weighted else None, pad)

    args = (grad, BAG_IDX, offsets, offset2bag, sizes, argmax,
            psw if weighted else torch.zeros(7))
    graph, _ = capture_fx(make_fx(backward, tracing_mode="fake")(*args), args, name="bag")
    fed = [a for a in args if a.numel()]  # a zero-size input is a known constant, not fed
    got = reference(graph, feed(graph, fed))[graph.outputs[0]]
    _compare(got, backward(*args))


GRADS = {  # gradients through the training capture: the backward ops of these ops
    "gather": (lambda x, i: torch.gather(x, 1, i), X, IDX),
    "index_two": (lambda x, i: x[i, i], X, torch.tensor([[0, 2], [1, -1]])),
    "topk": (lambda x: torch.topk(x, 2)[0], X),
    "sort": (lambda x: torch.sort(x, dim=0)[0], X),
    "max_dim": (lambda x: torch.max(x, 1)[0], X),
    "cumsum": (lambda x: torch.cumsum(x, 1), X),
    "cummax": (lambda x: torch.cummax(x, 1)[0], X),
    "masked_fill": (lambda x: x.masked_fill(x > 0, 0.0), X),
    "embedding_bag_mean": (lambda w, i: F.embedding_bag(i, w, torch.tensor([0, 2]), mode="mean"),
                           TABLE, torch.tensor([1, 2, 2, 5])),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradients_match_torch_through_the_training_capture(name):
    fn, *args = GRADS[name]

    def grads(*inputs):
        inputs = [t.detach().requires_grad_(True) if t.is_floating_point() else t
                  for t in inputs]
        out = fn(*inputs)
        # the gradient of sum(out**2) / 2: the incoming gradient is out itself
        return torch.autograd.grad(out, [t for t in inputs if t.requires_grad], out.detach())

    gm = make_fx(grads, decomposition_table=core_aten_decompositions(),
                 tracing_mode="fake")(*args)
    graph, _ = capture_fx(gm, args, name=name)
    values = reference(graph, feed(graph, args))
    want = grads(*args)
    assert len(graph.outputs) == len(want)
    for out, w in zip(graph.outputs, want):
        _compare(values[out], w)


def _error(fn, *args) -> str:
    with pytest.raises(CompileError) as err:
        capture(_Fn(fn), args)
    message = str(err.value)
    assert "\n" not in message and __file__ in message  # the user's source line
    return message


@pytest.mark.parametrize("fn, op", [
    (lambda x: torch.nonzero(x > 0), "nonzero"),
    (lambda x: torch.masked_select(x, x > 0), "masked_select"),
    (lambda x: torch.unique(x), "_unique2"),
    (lambda x: x.repeat_interleave((x[:, 0] > 0).long() + 1, dim=0), "repeat_interleave")])
def test_data_dependent_shapes_are_refused_by_name(fn, op):
    message = _error(fn, X)
    assert message.startswith(f"aten.{op}.") and "depends on the data" in message


def test_nan_branch_of_a_computed_where_is_refused():
    message = _error(lambda x: x.masked_fill(x > 0, float("nan")), X)
    assert "NaN" in message


def test_index_arithmetic_beyond_2_24_is_refused():
    big = torch.zeros(2 ** 12, 2 ** 12)
    message = _error(lambda x, i: torch.gather(x, 1, i), big, torch.zeros(1, 1,
                                                                         dtype=torch.long))
    assert "2**24" in message


def test_bicubic_grid_sample_is_refused():
    assert "bicubic" in _error(lambda x, g: F.grid_sample(x, g, mode="bicubic",
                                                          align_corners=False), _IMAGE, _GRID)


def test_sort_of_a_long_row_is_refused():
    assert "2**24" in _error(lambda x: torch.sort(x), torch.zeros(1, 5000))


@pytest.mark.slow
def test_mixtral_routing_matches_torch():
    """Mixtral's MoE (topk of the router's softmax, then the chosen experts' weights by
    index), transformers' static-shape experts implementation ``batched_mm``."""
    transformers = pytest.importorskip("transformers")
    config = transformers.MixtralConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
        num_experts_per_tok=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=0,
        pad_token_id=0, experts_implementation="batched_mm", use_cache=False)
    torch.manual_seed(0)
    model = transformers.MixtralModel(config).eval()
    ids = torch.randint(1, 64, (2, 8), generator=_G)
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 6:] = 0
    _check(lambda i, m: model(input_ids=i, attention_mask=m).last_hidden_state, ids, mask)
