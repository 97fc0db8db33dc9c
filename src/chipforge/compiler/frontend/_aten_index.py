"""Core-ATen op handlers of the PyTorch front end: masks, indexing and data-dependent ops,
for both captures (inference and training). See ``_aten_ops`` for the handler contract.

Integer tensors (int64 in PyTorch) are "int32" on the chip; index arithmetic is done in
"int32" tensors (the vector unit computes in fp32, so it is exact below 2**24, and int32
storage keeps it so whatever the activation dtype): an index computed on the chip into a
table of 2**24 elements or more is refused. Masks (bool tensors) are 1.0 / 0.0 "fp32".
Indices computed on the chip must be in range (PyTorch raises; the chip reads whatever the
address holds): the reference (``reference()``) checks them.

- comparisons ``eq gt ge lt le`` are the kernel ops of the same name; ``ne`` is
  ``eq(eq(a, b), 0)``; ``logical_not`` (and ``bitwise_not`` of a mask) is ``eq(m, 0)``;
  ``and`` of masks is ``mul``, ``or`` is ``maximum``; ``_to_copy`` to bool is ``x != 0``.
- ``where(c, x, y)`` with a computed mask c: a finite branch v taken where t (c or 1 - c)
  is ``v * t``; a branch that is a +-inf scalar (``masked_fill(m, -inf)``) is
  ``-+log(1 - t)`` (-+inf where t = 1, 0 where t = 0) added to the other branch, which is
  then not multiplied. Exact when the branch not taken is finite (an inf or NaN there gives
  NaN); a constant branch holding NaN, or inf in only some elements, is refused.
- ``index`` (any index tensors, broadcast, None slots, negative indices, a constant bool
  mask), ``index_select``, ``gather``: one row gather (kernel op ``embedding``) of a flat
  row index computed in int32 (folded when the indices are constants). O(output).
- ``index_put``, ``scatter`` (src and value), ``scatter_add``, ``scatter_reduce`` (sum,
  mean; include_self), ``embedding_dense_backward``: ``scatter_add`` of the flat indices.
  Where several writes hit one element without accumulation (PyTorch: undefined which
  wins) the result is their mean; constant indices are deduplicated at capture time,
  keeping the last write (PyTorch on CPU). A base straight from ``empty`` counts as zeros.
  ``x[mask] = v`` with a computed mask and v broadcast over the selected elements is a
  where(). ``scatter_reduce`` amax/amin: dense over a one-hot, O(P Q C K).
- ``_embedding_bag`` (sum, mean, max; offsets constant or computed, per_sample_weights,
  include_last_offset, padding_idx): the rows gathered, the bag of each index
  (``sum(offsets <= i) - 1``, O(N * bags) when offsets are computed), then ``scatter_add``
  per bag (mean: divided by the bag's count, an empty bag gives 0); max: the dense max over
  a member mask, O(bags * N * D). Its outputs 1-3 (for the backward) as PyTorch's;
  ``_embedding_bag_backward``: the gradient rows of each index's bag scattered back.
- ``histc``: int32 bins and a one-hot sum; transformers' ``grouped_mm_fallback`` (MoE
  experts): each row's expert weight gathered, one batched matmul.
- ``argmax``/``argmin``, ``max.dim``/``min.dim``: the max, then the first index holding it
  (``n - max(hit * (n - i))``, in int32; a NaN is the max, as in PyTorch): O(n).
  ``topk``: k rounds of that, each excluding the element taken (adding
  ``log(1 - one_hot)``): O(k n), ties in index order; k > 8 or integers: a sort, then the
  first k.
  ``sort``/``argsort`` (stable; ascending or descending): each element's rank (the number
  of elements before it: O(n^2) comparisons), the indices scattered to their ranks and the
  values gathered. topk and sort do not order NaN as PyTorch does (as the largest).
- ``cumsum`` (``cumprod``, and ``cummax``/``cummin`` with the maximum's scan) along any
  dim: log2(n) steps of ``x + shift(x, 2**s)`` (``slice``, ``cat``, ``add``); exact for
  integers, float sums rounded in the activation dtype at each step. cummax's index: the
  max-scan of ``j * (x_j == running max_j)`` (the last position attaining it, as PyTorch).
- ``searchsorted``/``bucketize``: the count of boundaries below each value (all pairs
  compared); ``kthvalue``/``median`` (the lower median): a stable sort, then one slice.
- ``slice_scatter`` (step 1): ``cat`` of base's parts with src; another step: the known
  mask of the slice and a constant gather of src.
- ``grid_sampler_2d`` (bilinear or nearest; zeros or border padding): pixel coordinates
  computed on the chip (in the activation dtype), each corner one row gather.
- ``nonzero``, ``masked_select``, ``unique``, ``repeat_interleave`` of computed repeats are
  refused by name: their result shapes depend on the data.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from chipforge.compiler.frontend._aten_ops import _to_copy as _plain_to_copy
from chipforge.compiler.frontend._aten_ops import _where as _known_where
from chipforge.compiler.frontend._aten_ops import binary, is_number, prod, slice_
from chipforge.compiler.frontend._capture import DATA_DEPENDENT, Capture, Const, Dyn, registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)
MASK = "fp32"  # the dtype of a 1.0 / 0.0 mask
INT = "int32"  # PyTorch's int64 and int32 on the chip
_INTS = ("int8", "int32")
_FLIPPED = {"eq": "eq", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
EXACT = 2 ** 24  # integers the vector unit's fp32 arithmetic holds exactly


def _packet(cap: Capture) -> str:
    return cap.node.target.overloadpacket.__name__


def ew(cap: Capture, op: str, a, b, dtype: str) -> Dyn:
    """``a op b`` with both operands converted to ``dtype`` (values, constants or numbers,
    one of them computed); the result is ``dtype``, or a mask for a comparison."""
    out = MASK if op in _FLIPPED else dtype
    if not isinstance(a, Dyn) and op in ("add", "mul", "maximum", "minimum", *_FLIPPED):
        a, b, op = b, a, _FLIPPED.get(op, op)
    if isinstance(b, Const) and b.value.numel() == 1 and isinstance(a, Dyn) \
            and b.value.ndim <= len(cap.info(a)[0]):
        b = b.value.item()
    if is_number(b) and isinstance(a, Dyn):
        scalar = int(b) if dtype in _INTS else float(b)
        return cap.emit(op, [cap.name(a, dtype)], cap.info(a)[0], out, scalar=scalar)
    a, b = (Const(torch.tensor(v), cap.fresh()) if is_number(v) else v for v in (a, b))
    shape = tuple(torch.broadcast_shapes(cap.info(a)[0], cap.info(b)[0]))
    return cap.emit(op, [cap.name(a, dtype, len(shape)), cap.name(b, dtype, len(shape))],
                    shape, out)


def _const(cap: Capture, value: torch.Tensor) -> Const:
    return Const(value, cap.fresh())


def _reduce_last(cap: Capture, op: str, v, dtype: str) -> Dyn:
    """``op`` (sum or max) over the last dim of ``v``, kept as size 1."""
    shape = cap.info(v)[0]
    return cap.emit(op, [cap.name(v, dtype)], shape[:-1] + (1,), dtype)


def _is_bool(cap: Capture, position: int, item: int | None = None) -> bool:
    """Whether the current node's argument ``position`` (its ``item``-th element) is bool."""
    arg = cap.node.args[position] if position < len(cap.node.args) else None
    if item is not None and isinstance(arg, list | tuple):
        arg = arg[item]
    val = arg.meta.get("val") if isinstance(arg, torch.fx.Node) else None
    return isinstance(val, torch.Tensor) and val.dtype == torch.bool


def _exact(cap: Capture, size: int, what: str) -> None:
    """Fail where index arithmetic on the chip would reach ``size`` >= 2**24."""
    if size >= EXACT:
        raise cap.fail(f"{what} has {size} elements; an index computed on the chip must stay "
                       f"below 2**24 (exact in the vector unit's fp32); split the tensor or "
                       f"make the indices constants")


def wrapped(cap: Capture, idx, size: int):
    """``idx`` (int) with negative entries wrapped (``idx + size`` where ``idx < 0``), as
    int32; a constant is checked against ``-size..size-1`` at capture time."""
    if isinstance(idx, Const):
        value = idx.value.long()
        if value.numel() and (value.min() < -size or value.max() >= size):
            raise cap.fail(f"index {int(value.min())}..{int(value.max())} is out of range "
                           f"for a dim of size {size}")
        return _const(cap, value % size)
    if cap.info(idx)[1] not in _INTS:
        raise cap.fail("indices must be an integer tensor")
    negative = ew(cap, "lt", idx, 0, INT)
    return ew(cap, "add", idx, ew(cap, "mul", negative, size, INT), INT)


def _linear_index(cap: Capture, terms) -> Dyn | Const:
    """sum of ``index * stride`` over ``terms`` (int32 values, broadcast); folded when all
    indices are constants."""
    if all(isinstance(i, Const) for i, _ in terms):
        total = torch.zeros((), dtype=torch.long)
        for i, stride in terms:
            total = total + i.value.long() * stride
        return _const(cap, total)
    result = None
    for i, stride in terms:
        term = i if stride == 1 else (_const(cap, i.value.long() * stride)
                                      if isinstance(i, Const) else ew(cap, "mul", i, stride, INT))
        result = term if result is None else ew(cap, "add", result, term, INT)
    return result


def gather_rows(cap: Capture, table, rows, dtype: str) -> Dyn:
    """``table`` [V, D] (a value or constant) read at the int32 row indices ``rows`` [...]:
    [..., D] (kernel op ``embedding``)."""
    v, d = cap.info(table)[0]
    shape = cap.info(rows)[0]
    return cap.emit("embedding", [cap.name(table, dtype), cap.name(rows, INT)], shape + (d,),
                    dtype)


def _view(cap: Capture, x, dims, shape):
    """``x`` permuted by ``dims`` and reshaped to ``shape`` (folded for a constant)."""
    if isinstance(x, Const):
        return _const(cap, x.value.permute(*dims).reshape(shape))
    return cap.reshape(cap.permute(x, dims), shape)


# ---- masks: comparisons, logic, where ---------------------------------------------------


def compare(cap: Capture, op: str, a, b) -> Dyn:
    """The mask ``a op b`` (op one of eq gt ge lt le; one operand computed); a number or a
    one-element constant becomes attr ``scalar``. Operands of different dtypes are compared
    as "fp32"."""
    if not isinstance(a, Dyn):
        a, b, op = b, a, _FLIPPED[op]
    shape, dtype = cap.info(a)
    if isinstance(b, Const) and b.value.numel() == 1 and b.value.ndim <= len(shape):
        b = b.value.item()
    if is_number(b):
        integral = dtype in _INTS and float(b).is_integer()
        return cap.emit(op, [a], shape, MASK, scalar=int(b) if integral else float(b))
    dtypes = {dtype, cap.info(b)[1]}
    dtype = dtypes.pop() if len(dtypes) == 1 else "fp32"
    out = tuple(torch.broadcast_shapes(shape, cap.info(b)[0]))
    return cap.emit(op, [cap.name(a, dtype, len(out)), cap.name(b, dtype, len(out))], out, MASK)


def logical_not(cap: Capture, mask) -> Dyn:
    """1.0 where ``mask`` is 0, else 0.0 (``1 - mask`` for a mask, in one node)."""
    return compare(cap, "eq", mask, 0)


def _is_zero(value) -> bool:
    if isinstance(value, Const):
        return not value.value.any()
    return is_number(value) and value == 0


def _mask_operands(cap: Capture) -> None:
    """Fail unless the current node's tensor operands are all bool (masks)."""
    for arg in cap.node.args:
        val = arg.meta.get("val") if isinstance(arg, torch.fx.Node) else None
        if isinstance(val, torch.Tensor) and val.dtype != torch.bool:
            raise cap.fail(f"bitwise/logical ops are supported on bool tensors only, not "
                           f"{val.dtype}")


@handles("eq", "gt", "ge", "lt", "le")
def _compare(cap: Capture, a, b):
    return compare(cap, cap.node.target.overloadpacket.__name__, a, b)


@handles("ne")
def _ne(cap: Capture, a, b):
    return logical_not(cap, compare(cap, "eq", a, b))


@handles("logical_not", "bitwise_not")
def _not(cap: Capture, x):
    if cap.node.target.overloadpacket.__name__ == "bitwise_not":
        _mask_operands(cap)
    return logical_not(cap, x)  # logical_not(x) is x == 0 for any dtype


@handles("logical_and", "bitwise_and")
def _and(cap: Capture, a, b):
    _mask_operands(cap)
    return binary(cap, "mul", a, b)


@handles("logical_or", "bitwise_or")
def _or(cap: Capture, a, b):
    _mask_operands(cap)
    return binary(cap, "maximum", a, b)


def _scalar_value(v) -> float | None:
    """The value of a number or a one-element constant, else None."""
    if is_number(v):
        return float(v)
    if isinstance(v, Const) and v.value.numel() == 1:
        return float(v.value.item())
    return None


def _check_branch(cap: Capture, v) -> None:
    """Fail for a constant branch that a mask cannot select exactly by arithmetic: one with
    NaN, or with inf in some but not all of its elements."""
    value = v.value if isinstance(v, Const) else torch.tensor(v) if is_number(v) else None
    if value is None or not value.is_floating_point():
        return
    if value.isnan().any() or (value.numel() > 1 and value.isinf().any()):
        raise cap.fail("where() with a computed condition and a constant branch holding NaN "
                       "or a mix of inf and finite values cannot be selected exactly; use a "
                       "finite fill or one +-inf scalar")


@handles("_to_copy")
def _to_copy(cap: Capture, x, **kwargs):
    """A conversion (``_aten_ops``); to bool, the mask ``x != 0`` (a mask stays as it is)."""
    arg = cap.node.args[0]
    if cap.node.meta["val"].dtype != torch.bool or not isinstance(x, Dyn):
        return _plain_to_copy(cap, x, **kwargs)
    if arg.meta["val"].dtype == torch.bool:
        return x
    return logical_not(cap, logical_not(cap, x))


@handles("where")
def _where(cap: Capture, cond, x, y):
    """where(c, x, y) for a computed mask c (see the module docstring); a known mask is
    capture()'s mapping (``_aten_ops``)."""
    if not isinstance(cond, Dyn):
        return _known_where(cap, cond, x, y)
    shape, dtype = cap.out()
    for v in (x, y):
        _check_branch(cap, v)
    infs = [s if s is not None and abs(s) == float("inf") else None
            for s in (_scalar_value(x), _scalar_value(y))]
    terms = []
    for value, inf, other_inf, branch in ((x, infs[0], infs[1], 0), (y, infs[1], infs[0], 1)):
        if inf is not None:  # -inf where taken, 0 elsewhere: log(1 - taken)
            not_taken = logical_not(cap, cond) if branch == 0 else cond
            term = cap.emit("log", [cap.name(not_taken, dtype)], cap.info(not_taken)[0], dtype)
            terms.append(term if inf < 0 else cap.emit("neg", [term], cap.info(term)[0], dtype))
        elif other_inf is not None:  # the inf term decides where it is taken
            if not _is_zero(value):
                terms.append(value)
        elif not _is_zero(value):
            taken = cond if branch == 0 else logical_not(cap, cond)
            terms.append(ew(cap, "mul", taken, value, dtype))
    if not terms:
        terms.append(ew(cap, "mul", cond, 0, dtype))
    result = terms[0]
    for term in terms[1:]:
        result = ew(cap, "add", result, term, dtype)
    if cap.info(result)[0] != shape:
        result = cap.emit("expand", [result], shape, dtype, shape=shape)
    return result


# ---- gathers: index, index_select, gather ------------------------------------------------


def _expand_bool_indices(cap: Capture, indices) -> list:
    """``indices`` with each constant bool mask replaced by the integer indices of its True
    elements (one per dim it covers); a computed mask is refused (data-dependent shape)."""
    out = []
    for k, idx in enumerate(indices):
        if idx is not None and (_is_bool(cap, 1, k) or (isinstance(idx, Const)
                                                        and idx.value.dtype == torch.bool)):
            if not isinstance(idx, Const):
                raise cap.fail("indexing with a computed bool mask has a data-dependent "
                               "result shape; use torch.where(mask, x, 0) or a constant mask")
            out.extend(_const(cap, i) for i in idx.value.nonzero(as_tuple=True))
        else:
            out.append(idx)
    return out


def _indexed_rows(cap: Capture, shape, indices) -> tuple[list, list, object, tuple]:
    """For advanced indexing of a tensor of ``shape`` by ``indices`` (None where a dim is
    not indexed): the indexed dims, the other dims, the flat row of the indexed dims each
    index combination selects (int32, broadcast to the index shape), and that shape."""
    slots = [k for k, v in enumerate(indices) if v is not None]
    rest = [d for d in range(len(shape)) if d not in slots]
    sizes = [shape[k] for k in slots]
    strides = [prod(sizes[i + 1:]) for i in range(len(sizes))]
    terms = [(wrapped(cap, indices[k], shape[k]), s) for k, s in zip(slots, strides)]
    if not all(isinstance(i, Const) for i, _ in terms):
        _exact(cap, prod(sizes), "the indexed dims")
    rows = _linear_index(cap, terms)
    batch = tuple(torch.broadcast_shapes(*(cap.info(i)[0] for i, _ in terms)))
    if cap.info(rows)[0] != batch:
        rows = (_const(cap, rows.value.expand(batch)) if isinstance(rows, Const)
                else cap.emit("expand", [rows], batch, INT, shape=batch))
    return slots, rest, rows, batch


def index(cap: Capture, x, indices, dtype: str):
    """x[indices] as PyTorch's advanced indexing (``aten.index``): the indexed dims moved
    first and flattened into the rows of a table, the rest into its columns; one row gather
    by the broadcast flat index; the result dims placed where PyTorch places them (at the
    first indexed dim if the indexed dims are adjacent, else first)."""
    shape = cap.info(x)[0]
    indices = _expand_bool_indices(cap, list(indices))
    if all(v is None for v in indices):
        return x
    slots, rest, rows, batch = _indexed_rows(cap, shape, indices)
    sizes = [shape[k] for k in slots]
    width = prod(shape[d] for d in rest)
    table = _view(cap, x, slots + rest, (prod(sizes), width))
    out = gather_rows(cap, table, rows, dtype)
    out = cap.reshape(out, batch + tuple(shape[d] for d in rest))
    adjacent = slots == list(range(slots[0], slots[-1] + 1))
    if adjacent and slots[0] > 0:  # the leading unindexed dims go back in front
        n, lead = len(batch), slots[0]
        order = (list(range(n, n + lead)) + list(range(n))
                 + list(range(n + lead, n + len(rest))))
        out = cap.permute(out, order)
    return out


@handles("index", "_unsafe_index")
def _index(cap: Capture, x, indices):
    shape, dtype = cap.out()
    return cap.reshape(index(cap, x, indices, dtype), shape)


@handles("index_select")
def _index_select(cap: Capture, x, dim: int, idx):
    shape, dtype = cap.out()
    if not cap.info(x)[0]:  # 0-d: as [1]
        x = cap.reshape(x, (1,))
    rank = len(cap.info(x)[0])
    slots = [None] * (dim % rank) + [cap.reshape(idx, (prod(cap.info(idx)[0]),))]
    return cap.reshape(index(cap, x, slots, dtype), shape)


def flat_positions(cap: Capture, shape, dim: int, idx):
    """The flat (row-major) positions in a tensor of ``shape`` of the elements a
    gather/scatter along ``dim`` with index ``idx`` (shape T, T[d] <= shape[d]) addresses:
    ``sum_{d != dim} t_d * stride_d + idx[t] * stride_dim``, int32 of shape T."""
    t_shape = cap.info(idx)[0]
    strides = [prod(shape[d + 1:]) for d in range(len(shape))]
    base = torch.zeros(t_shape, dtype=torch.long)
    for d, size in enumerate(t_shape):
        if d != dim:
            view = [1] * len(t_shape)
            view[d] = size
            base = base + torch.arange(size).reshape(view) * strides[d]
    if isinstance(idx, Const):
        value = idx.value.long()
        if value.numel() and (value.min() < 0 or value.max() >= shape[dim]):
            raise cap.fail(f"index {int(value.min())}..{int(value.max())} is out of range for "
                           f"dim {dim} of size {shape[dim]}")
        return _const(cap, base + value * strides[dim])
    if cap.info(idx)[1] not in _INTS:
        raise cap.fail("indices must be an integer tensor")
    _exact(cap, prod(shape), "the indexed tensor")
    scaled_idx = idx if strides[dim] == 1 else ew(cap, "mul", idx, strides[dim], INT)
    return ew(cap, "add", scaled_idx, _const(cap, base), INT) if base.any() else scaled_idx


@handles("gather")
def _gather(cap: Capture, x, dim: int, idx, sparse_grad: bool = False):
    """out[t] = x[t with t_dim replaced by idx[t]]: a row gather of x viewed as [numel, 1]."""
    shape, dtype = cap.out()
    if not cap.info(x)[0]:  # 0-d: as [1]
        x, idx = cap.reshape(x, (1,)), cap.reshape(idx, (1,))
    x_shape = cap.info(x)[0]
    dim %= len(x_shape)
    flat = flat_positions(cap, x_shape, dim, idx)
    table = cap.reshape(x, (prod(x_shape), 1))
    return cap.reshape(gather_rows(cap, table, flat, dtype), shape)


# ---- scatters: index_put, scatter, scatter_add, scatter_reduce --------------------------


def _last_writes(cap: Capture, idx: Const, values, dtype: str):
    """Constant row indices ``idx`` [n] deduplicated keeping each row's last write (PyTorch
    on CPU), and the matching rows of ``values`` [n, D]."""
    flat = idx.value.long()
    last = {int(r): i for i, r in enumerate(flat.tolist())}
    keep = torch.tensor(sorted(last.values()), dtype=torch.long)
    if len(keep) == len(flat):
        return idx, values
    if isinstance(values, Const):
        return _const(cap, flat[keep]), _const(cap, values.value[keep])
    return _const(cap, flat[keep]), gather_rows(cap, values, _const(cap, keep), dtype)


def scatter_table(cap: Capture, base, rows, values, mode: str, include_self: bool,
                  dtype: str, v: int):
    """``base`` [V, D] (a value, constant or 0) with ``values`` [n, D] written into the rows
    ``rows`` (int32 [n], in range): ``mode`` "sum" adds them (every write accumulates), "mean"
    averages them, "set" writes them (several writes to a row: their mean). Without
    ``include_self`` a written row's base is left out. Result [V, D]."""
    if mode == "set" and isinstance(rows, Const):
        rows, values = _last_writes(cap, rows, values, dtype)
    n, d = cap.info(values)[0]
    fill = _uniform(values) if mode == "set" else None
    total = None if fill is not None else cap.emit(
        "scatter_add", [cap.name(rows, INT), cap.name(values, dtype)], (v, d), dtype,
        num_rows=v)
    if mode == "sum" and include_self:
        return total if _is_zero(base) else ew(cap, "add", total, base, dtype)
    if isinstance(rows, Const):
        count = _const(cap, torch.bincount(rows.value.long(), minlength=v).reshape(v, 1))
        unhit = _const(cap, (count.value == 0).float())
    else:
        ones = _const(cap, torch.ones(n, 1, dtype=torch.int32))
        count = cap.emit("scatter_add", [cap.name(rows, INT), cap.name(ones, INT)], (v, 1),
                         INT, num_rows=v)
        unhit = logical_not(cap, count)
    kept = None if _is_zero(base) else base
    if mode == "mean" and include_self:  # (base + sum) / (count + 1)
        summed = total if kept is None else ew(cap, "add", total, kept, dtype)
        divisor = (_const(cap, count.value + 1) if isinstance(count, Const)
                   else ew(cap, "add", count, 1, INT))
        return ew(cap, "div", summed, divisor, dtype)
    if fill is not None:  # one value written everywhere: value * hit, exact
        hit = (_const(cap, 1.0 - unhit.value) if isinstance(unhit, Const)
               else logical_not(cap, unhit))
        total = ew(cap, "mul", hit, _const(cap, torch.full((1, d), fill)), dtype)
    elif mode != "sum":  # set, or mean without self: the mean of the writes
        divisor = (_const(cap, count.value.clamp(min=1)) if isinstance(count, Const)
                   else ew(cap, "maximum", count, 1, INT))
        total = ew(cap, "div", total, divisor, dtype)
    if kept is None:
        return total
    return ew(cap, "add", total, ew(cap, "mul", kept, unhit, dtype), dtype)


def _uniform(values) -> float | None:
    """The one value of a constant whose elements are all equal (a scattered number)."""
    if not isinstance(values, Const) or not values.value.numel():
        return None
    first = values.value.flatten()[0]
    return float(first) if bool((values.value == first).all()) else None


_EMPTY = ("empty", "empty_like", "empty_permuted", "empty_strided", "new_empty")


def _uninitialized(cap: Capture) -> bool:
    """Whether the current node's base (argument 0) comes straight from an ``empty`` op: its
    values are arbitrary, so a scatter into it may take them as zeros."""
    base = cap.node.args[0]
    packet = getattr(getattr(base, "target", None), "overloadpacket", None)
    return getattr(packet, "__name__", None) in _EMPTY


def _broadcast_to(cap: Capture, values, shape, dtype: str):
    """``values`` (a value, constant or number) broadcast to ``shape``."""
    shape = tuple(shape)
    if is_number(values):
        return _const(cap, torch.full(shape, float(values)))
    if cap.info(values)[0] == shape:
        return values
    if isinstance(values, Const):
        return _const(cap, values.value.expand(shape))
    rank = len(shape)
    values = cap.reshape(values, (1,) * (rank - len(cap.info(values)[0])) + cap.info(values)[0])
    return cap.emit("expand", [cap.name(values, dtype)], shape, dtype, shape=shape)


@handles("index_put", "_unsafe_index_put")
def _index_put(cap: Capture, base, indices, values, accumulate: bool = False):
    """base[indices] = values (``accumulate``: +=), indices as for ``index``; a computed
    bool mask with values broadcast over the selected elements is a where()."""
    shape, dtype = cap.out()
    base = 0 if _uninitialized(cap) else base
    masked = _masked_put(cap, base, indices, values, accumulate)
    if masked is not None:
        return masked
    indices = _expand_bool_indices(cap, list(indices))
    slots, rest, rows, batch = _indexed_rows(cap, shape, indices)
    sizes = [shape[k] for k in slots]
    rows = cap.reshape(rows, (prod(batch),))
    rest_shape = tuple(shape[d] for d in rest)
    lead = slots[0] if slots == list(range(slots[0], slots[-1] + 1)) else 0
    placed = rest_shape[:lead] + batch + rest_shape[lead:]  # index()'s result layout
    vals = _broadcast_to(cap, values, placed, dtype)
    if lead:  # back to batch + rest order
        n = len(batch)
        order = list(range(lead, lead + n)) + list(range(lead)) + list(
            range(lead + n, len(placed)))
        vals = _view(cap, vals, order, batch + rest_shape)
    width = prod(rest_shape)
    vals = cap.reshape(vals, (prod(batch), width))
    table = None if _is_zero(base) else _view(cap, base, slots + rest, (prod(sizes), width))
    out = scatter_table(cap, table if table is not None else 0, rows, vals,
                        "sum" if accumulate else "set", True, dtype, prod(sizes))
    out = cap.reshape(out, tuple(sizes) + rest_shape)
    inverse = [0] * len(shape)
    for position, d in enumerate(slots + rest):
        inverse[d] = position
    return cap.permute(out, inverse)


def _masked_put(cap: Capture, base, indices, values, accumulate: bool):
    """``base[mask] = values`` (``+=`` with ``accumulate``) for one computed bool mask whose
    values broadcast over the dims after it (no data-dependent shape): ``where(mask, values,
    base)`` (``base + mask * values``); None for any other index_put."""
    slots = [k for k, v in enumerate(indices) if v is not None]
    if len(slots) != 1 or isinstance(indices[slots[0]], Const) or not _is_bool(cap, 1, slots[0]):
        return None
    shape, dtype = cap.out()
    k, mask = slots[0], indices[slots[0]]
    covered = len(cap.info(mask)[0])
    trailing = shape[k + covered:]
    v_shape = () if is_number(values) else cap.info(values)[0]
    while v_shape and v_shape[0] == 1 and len(v_shape) > len(trailing):
        v_shape = v_shape[1:]
    if len(v_shape) > len(trailing) or any(a not in (1, b) for a, b in
                                           zip(v_shape[::-1], trailing[::-1])):
        return None  # one value per selected element: refused as a data-dependent shape
    cond = cap.reshape(mask, (1,) * k + cap.info(mask)[0] + (1,) * len(trailing))
    if not is_number(values):
        values = cap.reshape(values, (1,) * (len(shape) - len(v_shape)) + v_shape)
    if accumulate:
        return ew(cap, "add", base, ew(cap, "mul", cond, values, dtype), dtype)
    return _where(cap, cond, values, base)


def _scatter_along(cap: Capture, base, dim: int, idx, src, mode: str,
                   include_self: bool = True):
    """scatter / scatter_add / scatter_reduce along ``dim``: base viewed as [numel, 1], the
    flat positions of idx, src restricted to idx's shape."""
    shape, dtype = cap.out()
    base = 0 if _uninitialized(cap) else base
    if not shape:  # 0-d: as [1]
        out = _scatter_along_1d(cap, base, idx, src, mode, include_self)
        return cap.reshape(out, shape)
    dim %= len(shape)
    t_shape = cap.info(idx)[0]
    flat = cap.reshape(flat_positions(cap, shape, dim, idx), (prod(t_shape),))
    if not is_number(src) and cap.info(src)[0] != t_shape:
        for d, size in enumerate(t_shape):
            src = (_const(cap, src.value.narrow(d, 0, size)) if isinstance(src, Const)
                   else slice_(cap, src, d, 0, size))
    vals = _broadcast_to(cap, src, t_shape, dtype)
    vals = cap.reshape(vals, (prod(t_shape), 1))
    table = 0 if _is_zero(base) else cap.reshape(base, (prod(shape), 1))
    out = scatter_table(cap, table, flat, vals, mode, include_self, dtype, prod(shape))
    return cap.reshape(out, shape)


def _scatter_along_1d(cap: Capture, base, idx, src, mode: str, include_self: bool):
    """A 0-d scatter as one of shape [1]."""
    vals = src if is_number(src) else cap.reshape(src, (1, 1))
    vals = _const(cap, torch.full((1, 1), float(src))) if is_number(src) else vals
    table = 0 if _is_zero(base) else cap.reshape(base, (1, 1))
    flat = flat_positions(cap, (1,), 0, cap.reshape(idx, (1,)))
    return scatter_table(cap, table, flat, vals, mode, include_self, cap.out()[1], 1)


@handles("scatter")
def _scatter(cap: Capture, base, dim: int, idx, src, reduce=None):
    if reduce not in (None, "add"):
        raise cap.fail(f"scatter with reduce={reduce!r} is not supported (only 'add'); use "
                       f"scatter_reduce")
    return _scatter_along(cap, base, dim, idx, src, "set" if reduce is None else "sum")


@handles("scatter_add")
def _scatter_add(cap: Capture, base, dim: int, idx, src):
    return _scatter_along(cap, base, dim, idx, src, "sum")


@handles("scatter_reduce")
def _scatter_reduce(cap: Capture, base, dim: int, idx, src, reduce: str,
                    include_self: bool = True):
    if reduce in ("amax", "amin"):
        return _scatter_extreme(cap, base, dim, idx, src, reduce, include_self)
    if reduce not in ("sum", "mean"):
        raise cap.fail(f"scatter_reduce with reduce={reduce!r} is not supported (sum, mean, "
                       f"amax, amin are)")
    return _scatter_along(cap, base, dim, idx, src, reduce, include_self)


def _scatter_extreme(cap: Capture, base, dim: int, idx, src, reduce: str, include_self: bool):
    """scatter_reduce amax / amin, dense: the one-hot [P, Q, C, K] of idx against base's C
    positions along ``dim``, the max over K of src + log(one_hot) (amin: of -src, negated)."""
    shape, dtype = cap.out()
    dim %= len(shape)
    t_shape = cap.info(idx)[0]
    if any(t != s for d, (t, s) in enumerate(zip(t_shape, shape)) if d != dim):
        raise cap.fail("scatter_reduce amax/amin needs the index's shape equal to the "
                       "input's except on dim")
    p, c, q = prod(shape[:dim]), shape[dim], prod(shape[dim + 1:])
    k = t_shape[dim]
    if p * q * c * k >= EXACT:
        raise cap.fail(f"scatter_reduce {reduce} is dense here ({p * q * c * k} elements); "
                       f"keep P * Q * C * K below 2**24")
    sign = -1 if reduce == "amin" else 1
    idx_l = _view(cap, cap.reshape(idx, (p, k, q)), (0, 2, 1), (p, q, 1, k))
    iota = _const(cap, torch.arange(c, dtype=torch.int32).reshape(1, 1, c, 1))
    hot = ew(cap, "eq", idx_l, iota, INT)  # [P, Q, C, K]
    s = _broadcast_to(cap, src, t_shape, dtype) if is_number(src) else src
    if cap.info(s)[0] != t_shape:
        for d, size in enumerate(t_shape):
            s = (_const(cap, s.value.narrow(d, 0, size)) if isinstance(s, Const)
                 else slice_(cap, s, d, 0, size))
    s_l = _view(cap, cap.reshape(s, (p, k, q)), (0, 2, 1), (p, q, 1, k))
    if sign < 0:
        s_l = _const(cap, -s_l.value) if isinstance(s_l, Const) else cap.emit(
            "neg", [cap.name(s_l, dtype)], cap.info(s_l)[0], dtype)
    logs = cap.emit("log", [cap.name(hot, dtype)], cap.info(hot)[0], dtype)
    best = _reduce_last(cap, "max", ew(cap, "add", s_l, logs, dtype), dtype)  # [P, Q, C, 1]
    hit = _reduce_last(cap, "max", hot, MASK)
    b = _view(cap, cap.reshape(base, (p, c, q)), (0, 2, 1), (p, q, c, 1))
    if sign < 0:
        b = _const(cap, -b.value) if isinstance(b, Const) else cap.emit(
            "neg", [cap.name(b, dtype)], cap.info(b)[0], dtype)
    if include_self:
        out = ew(cap, "maximum", best, b, dtype)
    else:  # best where hit (0 elsewhere: max(best, log(1 - hit))), base elsewhere
        unhit = logical_not(cap, hit)
        written = ew(cap, "maximum", best, cap.emit("log", [cap.name(unhit, dtype)],
                                                     cap.info(unhit)[0], dtype), dtype)
        out = ew(cap, "add", written, ew(cap, "mul", b, unhit, dtype), dtype)
    if sign < 0:
        out = cap.emit("neg", [out], cap.info(out)[0], dtype)
    return cap.reshape(_view(cap, cap.reshape(out, (p, q, c)), (0, 2, 1), (p, c, q)), shape)


@handles("embedding_dense_backward")
def _embedding_backward(cap: Capture, grad, indices, num_weights: int, padding_idx: int,
                        scale_grad_by_freq: bool):
    """The weight's gradient: grad's rows added into the rows of their indices (a
    padding_idx >= 0 row gets none)."""
    shape, dtype = cap.out()
    if scale_grad_by_freq:
        raise cap.fail("embedding with scale_grad_by_freq=True is not supported")
    n = prod(cap.info(indices)[0])
    rows = cap.reshape(grad, (n, shape[1]))
    if padding_idx >= 0:
        keep = logical_not(cap, compare(cap, "eq", indices, padding_idx))
        rows = ew(cap, "mul", rows, cap.reshape(keep, (n, 1)), dtype)
    flat = cap.reshape(indices, (n,))
    return scatter_table(cap, 0, flat, rows, "sum", True, dtype, shape[0])


@handles("slice_scatter")
def _slice_scatter(cap: Capture, base, src, dim: int = 0, start=None, end=None, step: int = 1):
    shape, dtype = cap.out()
    dim %= len(shape)
    start, end, step = slice(start, end, step).indices(shape[dim])
    if step != 1:
        return _slice_scatter_strided(cap, base, src, dim, start, end, step)

    def part(lo: int, hi: int):
        if isinstance(base, Const):
            return Const(base.value.narrow(dim, lo, hi - lo), cap.fresh())
        return slice_(cap, base, dim, lo, hi)

    pieces = ([part(0, start)] if start > 0 else []) + [src] + (
        [part(end, shape[dim])] if end < shape[dim] else [])
    if len(pieces) == 1:
        return cap.name(src, dtype) if isinstance(src, Dyn) else src
    return cap.emit("cat", [cap.name(p, dtype, len(shape)) for p in pieces], shape, dtype,
                    dim=dim)


def _slice_scatter_strided(cap: Capture, base, src, dim: int, start: int, end: int,
                           step: int):
    """slice_scatter with step > 1: src placed by a constant gather along ``dim``, selected
    by the slice's known mask."""
    shape = cap.out()[0]
    size, taken = shape[dim], len(range(start, end, step))
    pos = torch.arange(size)
    view = [1] * len(shape)
    view[dim] = size
    selected = ((pos >= start) & (pos < end) & ((pos - start) % step == 0)).reshape(view)
    source = ((pos - start) // step).clamp(0, taken - 1).reshape(view)
    src_shape = cap.info(src)[0]
    idx = _const(cap, source.expand(src_shape[:dim] + (size,) + src_shape[dim + 1:]))
    flat = flat_positions(cap, src_shape, dim, idx)
    placed = gather_rows(cap, cap.reshape(src, (prod(src_shape), 1)), flat, cap.out()[1])
    placed = cap.reshape(placed, shape)
    return _known_where(cap, _const(cap, selected.expand(shape)), placed, base)


# ---- embedding_bag ---------------------------------------------------------------------


def _bag_of(cap: Capture, offsets, n: int):
    """The bag (0, 1, ...) of each of the ``n`` indices, int32 [n]: the number of offsets
    <= its position, minus 1."""
    n_off = prod(cap.info(offsets)[0])
    if isinstance(offsets, Const):
        positions = torch.arange(n)
        return _const(cap, torch.bucketize(positions, offsets.value.long(), right=True) - 1)
    _exact(cap, n * n_off, "embedding_bag's index-to-bag comparison")
    iota = _const(cap, torch.arange(n, dtype=torch.int32).reshape(n, 1))
    started = ew(cap, "le", cap.reshape(offsets, (1, n_off)), iota, INT)  # [n, bags]
    count = _reduce_last(cap, "sum", started, INT)
    return cap.reshape(ew(cap, "sub", count, 1, INT), (n,))


@handles("_embedding_bag", "_embedding_bag_forward_only")
def _embedding_bag(cap: Capture, weight, indices, offsets, scale_grad_by_freq=False,
                   mode: int = 0, sparse=False, per_sample_weights=None,
                   include_last_offset: bool = False, padding_idx: int = -1):
    """nn.EmbeddingBag (see the module docstring), with the outputs its backward reads as
    PyTorch gives them: offset2bag (each index's bag; empty in mode sum without
    padding_idx), bag_size (the non-padding count per bag; zeros in mode sum) and
    max_indices (mode max: the weight row of each bag's max [bags, D], 0 for an empty bag;
    mode mean: bag_size; mode sum: zeros)."""
    (bags, d), dtype = cap.out(0)
    n = prod(cap.info(indices)[0])
    flat = cap.reshape(indices, (n,))
    if len(cap.info(indices)[0]) == 2:  # [B, L] bags of L (offsets unused)
        length = cap.info(indices)[0][1]
        offsets = _const(cap, torch.arange(0, n, length))
    n_off = prod(cap.info(offsets)[0])
    rows = gather_rows(cap, weight, flat, dtype)  # [n, D]
    keep = None
    if padding_idx is not None and padding_idx >= 0:
        keep = (_const(cap, (flat.value != padding_idx).to(torch.int32).reshape(n, 1))
                if isinstance(flat, Const) else
                cap.reshape(logical_not(cap, compare(cap, "eq", flat, padding_idx)), (n, 1)))
    bag = _bag_of(cap, offsets, n)
    ones = keep if keep is not None else _const(cap, torch.ones(n, 1, dtype=torch.int32))
    count = scatter_table(cap, 0, bag, ones, "sum", True, INT, n_off)  # [n_off, 1]
    if mode == 2:
        if per_sample_weights is not None:
            raise cap.fail("embedding_bag mode='max' does not take per_sample_weights")
        out, argmax = _bag_max(cap, rows, flat, bag, keep, n_off, dtype)
    else:
        factor = keep
        if per_sample_weights is not None:
            psw = cap.reshape(per_sample_weights, (n, 1))
            factor = psw if factor is None else ew(cap, "mul", psw, factor, dtype)
        if factor is not None:
            rows = ew(cap, "mul", rows, factor, dtype)
        out = scatter_table(cap, 0, bag, rows, "sum", True, dtype, n_off)
        if mode == 1:
            out = ew(cap, "div", out, ew(cap, "maximum", count, 1, INT), dtype)
    if n_off != bags:
        out, count = (slice_(cap, t, 0, 0, bags) for t in (out, count))
        argmax = slice_(cap, argmax, 0, 0, bags) if mode == 2 else None
    sizes = cap.reshape(count, (bags,)) if mode else _const(cap, torch.zeros(bags,
                                                                              dtype=torch.long))
    offset2bag = bag if mode or keep is not None else _const(cap, torch.zeros(0,
                                                                              dtype=torch.long))
    return out, offset2bag, sizes, argmax if mode == 2 else sizes


def _bag_max(cap: Capture, rows, flat, bag, keep, bags: int, dtype: str) -> tuple[Dyn, Dyn]:
    """The elementwise max of each bag's rows [n, D] (an empty bag: 0), dense over a member
    mask [bags, 1, n], and the weight row (``flat`` [n]) it came from (first in the bag; an
    empty bag: 0)."""
    n, d = cap.info(rows)[0]
    if bags * d * n >= EXACT:
        raise cap.fail(f"embedding_bag mode='max' is dense here ({bags * d * n} elements); "
                       f"keep bags * D * N below 2**24")
    iota = _const(cap, torch.arange(bags, dtype=torch.int32).reshape(bags, 1, 1))
    member = ew(cap, "eq", cap.reshape(bag, (1, 1, n)), iota, INT)  # [bags, 1, n]
    if keep is not None:
        member = ew(cap, "mul", member, cap.reshape(keep, (1, 1, n)), MASK)
    logs = cap.emit("log", [cap.name(member, dtype)], cap.info(member)[0], dtype)
    values = cap.reshape(cap.permute(rows, (1, 0)), (1, d, n))
    best, where = first_max(cap, ew(cap, "add", values, logs, dtype), dtype)  # [bags, D, 1]
    hit = _reduce_last(cap, "max", member, MASK)  # [bags, 1, 1]
    unhit = logical_not(cap, hit)
    empty = cap.emit("log", [cap.name(unhit, dtype)], cap.info(unhit)[0], dtype)
    out = cap.reshape(ew(cap, "maximum", best, empty, dtype), (bags, d))
    row = gather_rows(cap, cap.reshape(flat, (n, 1)), cap.reshape(where, (bags, d)), INT)
    return out, cap.reshape(ew(cap, "mul", cap.reshape(row, (bags, d, 1)), hit, INT), (bags, d))


@handles("_embedding_bag_backward")
def _embedding_bag_backward(cap: Capture, grad, indices, offsets, offset2bag, bag_size,
                            max_indices, num_weights: int, scale_grad_by_freq: bool,
                            mode: int, sparse: bool = False, per_sample_weights=None,
                            padding_idx: int = -1):
    """The weight's gradient [num_weights, D]: each index's bag's gradient row (times its
    per-sample weight; mean: divided by the bag's size) added into the index's row,
    padding_idx left out; max: each bag's gradient added where its max came from."""
    shape, dtype = cap.out()
    if scale_grad_by_freq:
        raise cap.fail("embedding_bag with scale_grad_by_freq=True is not supported")
    bags, d = cap.info(grad)[0]
    if mode == 2:
        nonempty = ew(cap, "gt", cap.reshape(bag_size, (bags, 1)), 0, INT)
        flat = ew(cap, "add", ew(cap, "mul", max_indices, d, INT),
                  _const(cap, torch.arange(d, dtype=torch.int32).reshape(1, d)), INT)
        rows = ew(cap, "mul", grad, nonempty, dtype)
        out = scatter_table(cap, 0, cap.reshape(flat, (bags * d,)),
                            cap.reshape(rows, (bags * d, 1)), "sum", True, dtype,
                            num_weights * d)
        return cap.reshape(out, shape)
    n = prod(cap.info(indices)[0])
    flat = cap.reshape(indices, (n,))
    if len(cap.info(indices)[0]) == 2:
        offsets = _const(cap, torch.arange(0, n, cap.info(indices)[0][1]))
    n_off = prod(cap.info(offsets)[0])
    table = grad
    if n_off > bags:  # include_last_offset: indices past the last offset are in no bag
        table = cap.emit("cat", [cap.name(grad, dtype),
                                 cap.name(_const(cap, torch.zeros(n_off - bags, d)), dtype)],
                         (n_off, d), dtype, dim=0)
    bag = _bag_of(cap, offsets, n)
    rows = gather_rows(cap, table, bag, dtype)  # [n, D]
    factors = []
    if per_sample_weights is not None:
        factors.append(cap.reshape(per_sample_weights, (n, 1)))
    if padding_idx is not None and padding_idx >= 0:
        factors.append(cap.reshape(logical_not(cap, compare(cap, "eq", flat, padding_idx)),
                                   (n, 1)))
    if mode == 1:
        sizes = cap.reshape(ew(cap, "maximum", bag_size, 1, INT), (bags, 1))
        if n_off > bags:
            sizes = cap.emit("cat", [sizes, cap.name(_const(cap, torch.ones(n_off - bags, 1)),
                                                      INT)], (n_off, 1), INT, dim=0)
        factors.append(ew(cap, "div", 1.0, gather_rows(cap, sizes, bag, dtype), dtype))
    for factor in factors:
        rows = ew(cap, "mul", rows, factor, dtype)
    return scatter_table(cap, 0, flat, rows, "sum", True, dtype, num_weights)


# ---- ordering: argmax, max/min over a dim, topk, sort ------------------------------------


def first_max(cap: Capture, v, dtype: str) -> tuple[Dyn, Dyn]:
    """The max of ``v`` [..., n] over its last dim and the first index holding it (int32),
    both [..., 1]: ``n - max(hit * (n - i))`` with hit = (v == max) or isnan(v) (a NaN is the
    max, as in PyTorch: max is NaN then, and no element equals it). O(n)."""
    n = cap.info(v)[0][-1]
    _exact(cap, n, "the reduced dim")
    m = _reduce_last(cap, "max", v, dtype)
    hit = ew(cap, "eq", v, m, dtype)
    if dtype not in _INTS:
        nan = cap.emit("isnan", [cap.name(v, dtype)], cap.info(v)[0], MASK)
        hit = ew(cap, "maximum", hit, nan, MASK)
    score = ew(cap, "mul", hit, _const(cap, torch.arange(n, 0, -1, dtype=torch.int32)), INT)
    best = _reduce_last(cap, "max", score, INT)
    return m, ew(cap, "add", ew(cap, "mul", best, -1, INT), n, INT)


def _negated(cap: Capture, x, dtype: str):
    return cap.emit("neg", [cap.name(x, dtype)], cap.info(x)[0], dtype)


def _empty_results(cap: Capture):
    """The current node's results as empty constants if every one has a zero-size dim (a
    tuple for a multi-output op), else None."""
    val = cap.node.meta["val"]
    vals = val if isinstance(val, tuple | list) else (val,)
    if not all(isinstance(v, torch.Tensor) and v.numel() == 0 for v in vals):
        return None
    consts = tuple(_const(cap, torch.empty(tuple(v.shape), dtype=v.dtype)) for v in vals)
    return consts if isinstance(val, tuple | list) else consts[0]


def _to_last(cap: Capture, x, dim: int) -> tuple[Dyn, list[int]]:
    """``x`` with ``dim`` swapped to the last place, and the permutation (its own inverse);
    a 0-d ``x`` as [1]."""
    if not cap.info(x)[0]:
        return cap.reshape(x, (1,)), [0]
    rank = len(cap.info(x)[0])
    dims = list(range(rank))
    dims[dim % rank], dims[-1] = dims[-1], dims[dim % rank]
    return cap.permute(cap.name(x), dims), dims


def _extreme(cap: Capture, x, dim, largest: bool, index: int | None = None):
    """(max or min of x over ``dim`` (all if None), first index of it), each reshaped to the
    current node's output ``index`` (values) and ``index + 1`` (indices)."""
    dtype = cap.info(x)[1]
    if dim is None:
        v, dims = cap.reshape(x, (1, prod(cap.info(x)[0]))), None
    else:
        v, dims = _to_last(cap, x, dim)
    if not largest:
        v = _negated(cap, v, dtype)
    m, i = first_max(cap, v, dtype)
    if not largest:
        m = _negated(cap, m, dtype)
    if dims is not None:
        m, i = cap.permute(m, dims), cap.permute(i, dims)
    return m, i


@handles("argmax", "argmin")
def _argmax(cap: Capture, x, dim=None, keepdim: bool = False):
    """The first index of the max (min) over ``dim`` (of the flattened x if None)."""
    shape = cap.out()[0]
    return cap.reshape(_extreme(cap, x, dim, _packet(cap) == "argmax")[1], shape)


@handles("max", "min")
def _max_dim(cap: Capture, x, dim=None, keepdim: bool = False):
    """max.dim / min.dim: (values, first indices); max / min of everything: the value."""
    m, i = _extreme(cap, x, dim, _packet(cap) == "max")
    if dim is None:
        return cap.reshape(m, cap.out()[0])
    return cap.reshape(m, cap.out(0)[0]), cap.reshape(i, cap.out(1)[0])


@handles("topk")
def _topk(cap: Capture, x, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The k largest (smallest) values over ``dim`` and their indices, in order (ties by
    index): k rounds of max and first index, each excluding the one taken."""
    (shape, dtype), index_shape = cap.out(0), cap.out(1)[0]
    if (empty := _empty_results(cap)) is not None:  # k = 0
        return empty
    v, dims = _to_last(cap, x, dim)
    n = cap.info(v)[0][-1]
    if k > 8 or dtype in _INTS:  # a sort is cheaper than k rounds (integers: no -inf)
        values, indices = _sort_last(cap, v, largest, dtype)
        values, indices = (slice_(cap, t, -1 % len(shape), 0, k) for t in (values, indices))
    else:
        values, indices = _topk_rounds(cap, v if largest else _negated(cap, v, dtype), k, n,
                                       dtype)
        if not largest:
            values = _negated(cap, values, dtype)
    return (cap.reshape(cap.permute(values, dims), shape),
            cap.reshape(cap.permute(indices, dims), index_shape))


def _topk_rounds(cap: Capture, v, k: int, n: int, dtype: str) -> tuple[Dyn, Dyn]:
    iota = _const(cap, torch.arange(n, dtype=torch.int32))
    values, indices = [], []
    for r in range(k):
        m, i = first_max(cap, v, dtype)
        values.append(m)
        indices.append(i)
        if r < k - 1:  # -inf where taken: v + log(1 - one_hot(i))
            others = logical_not(cap, ew(cap, "eq", i, iota, INT))
            v = ew(cap, "add", v, cap.emit("log", [cap.name(others, dtype)],
                                           cap.info(others)[0], dtype), dtype)
    if k == 1:
        return values[0], indices[0]
    shape = cap.info(v)[0][:-1] + (k,)
    return (cap.emit("cat", values, shape, dtype, dim=len(shape) - 1),
            cap.emit("cat", indices, shape, INT, dim=len(shape) - 1))


def _sort_last(cap: Capture, v, descending: bool, dtype: str) -> tuple[Dyn, Dyn]:
    """Stable sort of ``v`` [..., n] over its last dim: (values, int32 indices). Element i's
    rank is the number of j with v_j before v_i (strictly greater, descending; smaller,
    ascending) or v_j == v_i and j < i; indices are scattered to their ranks, values
    gathered by them."""
    shape = cap.info(v)[0]
    n, r = shape[-1], prod(shape[:-1])
    if r * n * n >= EXACT:
        raise cap.fail(f"sort compares all pairs ({r * n * n} comparisons); keep rows * n^2 "
                       f"below 2**24")
    rows = cap.reshape(v, (r, n))
    vi, vj = cap.reshape(rows, (r, n, 1)), cap.reshape(rows, (r, 1, n))
    strictly = ew(cap, "gt" if descending else "lt", vj, vi, dtype)  # [r, n, n]: j before i
    earlier = _const(cap, torch.ones(n, n).tril(-1).reshape(1, n, n))  # j < i
    tied = ew(cap, "mul", ew(cap, "eq", vj, vi, dtype), earlier, MASK)
    rank = _reduce_last(cap, "sum", ew(cap, "add", strictly, tied, MASK), INT)  # [r, n, 1]
    row_base = _const(cap, (torch.arange(r, dtype=torch.int32) * n).reshape(r, 1))
    slot = cap.reshape(ew(cap, "add", cap.reshape(rank, (r, n)), row_base, INT), (r * n,))
    iota = _const(cap, torch.arange(n, dtype=torch.int32).repeat(r).reshape(r * n, 1))
    order = cap.emit("scatter_add", [slot, cap.name(iota, INT)], (r * n, 1), INT,
                     num_rows=r * n)
    order = cap.reshape(order, (r, n))
    picked = ew(cap, "add", order, row_base, INT)
    values = gather_rows(cap, cap.reshape(rows, (r * n, 1)), picked, dtype)
    return cap.reshape(values, shape), cap.reshape(order, shape)


@handles("sort")
def _sort(cap: Capture, x, dim: int = -1, descending: bool = False, *, stable=None,
          **kwargs):
    """sort.default (x, dim, descending) and sort.stable (x, *, stable, dim, descending):
    always stable."""
    dim = kwargs.get("dim", dim)
    descending = kwargs.get("descending", descending)
    (shape, dtype), index_shape = cap.out(0), cap.out(1)[0]
    if (empty := _empty_results(cap)) is not None:
        return empty
    v, dims = _to_last(cap, x, dim)
    values, indices = _sort_last(cap, v, descending, dtype)
    return (cap.reshape(cap.permute(values, dims), shape),
            cap.reshape(cap.permute(indices, dims), index_shape))


# ---- cumsum, masked_scatter, nonzero -----------------------------------------------------


def scan(cap: Capture, v, dim: int, dtype: str, op: str = "add", fill: float = 0.0) -> Dyn:
    """The inclusive prefix ``op`` (add, mul, maximum, minimum: associative) of ``v`` along
    ``dim``: log2(n) steps of ``v op shift(v, 2**s)``, ``fill`` (op's identity) shifted in."""
    shape = cap.info(v)[0]
    dim %= len(shape)
    n, step = shape[dim], 1
    v = cap.name(v, dtype)
    while step < n:
        pad = list(shape)
        pad[dim] = step
        identity = cap.name(_const(cap, torch.full(pad, fill)), dtype)
        shifted = cap.emit("cat", [identity, slice_(cap, v, dim, 0, n - step)], shape, dtype,
                           dim=dim)
        v = cap.emit(op, [v, shifted], shape, dtype)
        step *= 2
    return Dyn(v)


@handles("cumsum", "cumprod")
def _cumsum(cap: Capture, x, dim: int, dtype=None):
    """Prefix sums (products) along ``dim``; exact for integers, floats rounded in the
    activation dtype at each of the log2(n) steps."""
    shape, out_dtype = cap.out()
    if len(shape) == 0 or (empty := _empty_results(cap)) is not None:
        return cap.name(x, out_dtype) if len(shape) == 0 else empty
    if _packet(cap) == "cumprod":
        return scan(cap, x, dim, out_dtype, "mul", 1.0)
    return scan(cap, x, dim, out_dtype)


@handles("cummax", "cummin")
def _cummax(cap: Capture, x, dim: int):
    """Running max (min) along ``dim`` and the index where it was last attained (PyTorch's
    choice for ties): the max-scan of the values, then the max-scan of ``j * (x_j ==
    running_j)`` (position j is where the running max last changed or tied)."""
    (shape, dtype), index_shape = cap.out(0), cap.out(1)[0]
    if (empty := _empty_results(cap)) is not None:
        return empty
    if not shape:
        return x, _const(cap, torch.zeros((), dtype=torch.long))
    dim %= len(shape)
    largest = _packet(cap) == "cummax"
    v = cap.name(x, dtype) if largest else _negated(cap, x, dtype)
    lowest = -(2 ** 31) if dtype in _INTS else float("-inf")
    running = scan(cap, v, dim, dtype, "maximum", lowest)
    view = [1] * len(shape)
    view[dim] = shape[dim]
    positions = _const(cap, torch.arange(shape[dim], dtype=torch.int32).reshape(view))
    marks = ew(cap, "mul", ew(cap, "eq", v, running, dtype), positions, INT)
    index = scan(cap, marks, dim, INT, "maximum", 0)
    values = running if largest else _negated(cap, running, dtype)
    return values, cap.reshape(index, index_shape)


@handles("searchsorted", "bucketize")
def _searchsorted(cap: Capture, *args, out_int32: bool = False, right: bool = False,
                  side=None, sorter=None):
    """The insertion position of each value in the sorted boundaries (last dim): the count of
    boundaries < value (``right``: <=), compared all against all, O(values * boundaries)."""
    shape = cap.out()[0]
    if _packet(cap) == "searchsorted":
        boundaries, values = args[:2]
    else:
        values, boundaries = args[:2]
    if sorter is not None:
        raise cap.fail("searchsorted with a sorter is not supported; sort the boundaries first")
    right = right or side == "right"
    b_shape = cap.info(boundaries)[0]
    v_shape = () if is_number(values) else cap.info(values)[0]
    if len(b_shape) > 1 and b_shape[:-1] != v_shape[:-1]:
        raise cap.fail("searchsorted needs the boundaries' leading dims equal to the values'")
    dtype = cap.info(boundaries)[1] if is_number(values) else cap.info(values)[1]
    if len(b_shape) <= 1:
        bounds = cap.reshape(boundaries, (1,) * len(v_shape) + b_shape[-1:])
    else:
        bounds = cap.reshape(boundaries, b_shape[:-1] + (1, b_shape[-1]))
    vals = (_const(cap, torch.tensor(float(values)).reshape(1))
            if is_number(values) else cap.reshape(values, v_shape + (1,)))
    before = ew(cap, "le" if right else "lt", bounds, vals, dtype)  # [..., n, m]
    return cap.reshape(_reduce_last(cap, "sum", before, INT), shape)


@handles("kthvalue", "median")
def _kthvalue(cap: Capture, x, *args):
    """kthvalue(x, k, dim, keepdim) and median(x[, dim, keepdim]) (the lower median): the
    k-th smallest after a stable sort (O(n^2) comparisons), with its index."""
    if _packet(cap) == "kthvalue":
        k, dim = args[0], args[1] if len(args) > 1 else -1
    else:
        dim = args[0] if args else None
        n = cap.info(x)[0][dim] if dim is not None and cap.info(x)[0] else prod(cap.info(x)[0])
        k = (n - 1) // 2 + 1
    if dim is None:
        x, dim = cap.reshape(x, (prod(cap.info(x)[0]),)), 0
    dtype = cap.info(x)[1]
    v, dims = _to_last(cap, x, dim)
    values, indices = _sort_last(cap, v, False, dtype)
    last = len(cap.info(values)[0]) - 1
    picked = [cap.permute(slice_(cap, t, last, k - 1, k), dims) for t in (values, indices)]
    if args or _packet(cap) == "kthvalue":
        return cap.reshape(picked[0], cap.out(0)[0]), cap.reshape(picked[1], cap.out(1)[0])
    return cap.reshape(picked[0], cap.out()[0])


@handles("masked_scatter")
def _masked_scatter(cap: Capture, x, mask, source):
    """x with its masked elements (row-major) replaced by source's first elements in order:
    element e takes source.flat[cumsum(mask)[e] - 1]."""
    shape, dtype = cap.out()
    total = prod(shape)
    mask = _broadcast_to(cap, mask, shape, MASK)
    flat = cap.reshape(mask, (total,))
    if isinstance(flat, Const):
        position = _const(cap, (flat.value.long().cumsum(0) - 1).clamp(min=0))
    else:
        _exact(cap, total, "masked_scatter's input")
        position = ew(cap, "maximum", ew(cap, "sub", scan(cap, flat, 0, INT), 1, INT), 0, INT)
    src = cap.reshape(source, (prod(cap.info(source)[0]), 1))
    picked = cap.reshape(gather_rows(cap, src, position, dtype), shape)
    return _where(cap, mask, picked, x)


@handles(*DATA_DEPENDENT)
def _data_dependent(cap: Capture, *args, **kwargs):
    raise cap.fail(f"{_packet(cap)}'s result shape depends on the data, which a static chip "
                   f"program cannot have; keep a mask (torch.where(mask, x, 0)) or call it "
                   f"after the compiled call")


@handles("histc")
def _histc(cap: Capture, x, bins: int = 100, lo=0, hi=0):
    """Counts of x's elements in ``bins`` equal bins over [lo, hi] (hi in the last bin, values
    outside left out): bin = trunc((x - lo) * bins / (hi - lo)) in int32, then the sum of its
    one-hot, O(numel * bins). The bin is computed in fp32, so a value within rounding of an
    edge may count in the neighbouring bin (integer values with integer edges are exact)."""
    shape, dtype = cap.out()
    if lo == hi:
        raise cap.fail("histc with min == max (the data's own range) is data-dependent; give "
                       "min and max")
    n = prod(cap.info(x)[0])
    _exact(cap, n * bins, "histc's one-hot")
    flat = cap.reshape(x, (n, 1))
    inside = ew(cap, "mul", ew(cap, "ge", flat, lo, "fp32"), ew(cap, "le", flat, hi, "fp32"),
                MASK)
    scaled_x = ew(cap, "mul", ew(cap, "sub", flat, lo, "fp32"), bins / (hi - lo), "fp32")
    which = ew(cap, "minimum", cap.cast(scaled_x, INT), bins - 1, INT)
    iota = _const(cap, torch.arange(bins, dtype=torch.int32).reshape(1, bins))
    hot = ew(cap, "mul", ew(cap, "eq", which, iota, INT), inside, dtype)  # [n, bins]
    counts = _reduce_last(cap, "sum", cap.permute(hot, (1, 0)), dtype)
    return cap.reshape(counts, shape)


@handles("grouped_mm_fallback")
def _grouped_mm(cap: Capture, x, weight, offs):
    """transformers' MoE grouped matmul (``transformers::grouped_mm_fallback``): row s of x
    [S, K] (rows sorted by expert) times weight[e] [K, N] of its group e (the number of
    cumulative counts ``offs`` <= s), rows from offs[-1] on zero: each row's weight gathered,
    then one batched matmul [S, 1, K] @ [S, K, N]."""
    shape, dtype = cap.out()
    s, k = cap.info(x)[0]
    experts, _, n = cap.info(weight)[0]
    group = ew(cap, "minimum", ew(cap, "add", _bag_of(cap, offs, s), 1, INT), experts - 1, INT)
    weights = gather_rows(cap, cap.reshape(weight, (experts, k * n)), group, dtype)
    product = cap.emit("matmul", [cap.reshape(x, (s, 1, k)), cap.reshape(weights, (s, k, n))],
                       (s, 1, n), dtype)
    iota = _const(cap, torch.arange(s, dtype=torch.int32).reshape(s, 1))
    last = cap.reshape(slice_(cap, offs, 0, experts - 1, experts) if not isinstance(offs, Const)
                       else _const(cap, offs.value[-1:]), (1, 1))
    used = ew(cap, "lt", iota, last, INT)  # [S, 1]
    return ew(cap, "mul", cap.reshape(product, shape), used, dtype)


# ---- grid_sampler_2d: gathers at computed coordinates -----------------------------------


def _unnormalize(cap: Capture, g, size: int, align_corners: bool, border: bool) -> Dyn:
    """Grid coordinates in [-1, 1] as pixel positions (``border``: clamped into the image)."""
    scale = (size - 1) / 2 if align_corners else size / 2
    pos = ew(cap, "add", ew(cap, "mul", g, scale, "fp32"), (size - 1) / 2, "fp32")
    if border:
        pos = ew(cap, "minimum", ew(cap, "maximum", pos, 0.0, "fp32"), float(size - 1), "fp32")
    return pos


def _corner(cap: Capture, table, xs, ys, weight, hw: tuple[int, int], base, dtype: str) -> Dyn:
    """weight * input[n, :, ys, xs] (0 where outside the image), as [N, Ho, Wo, C]."""
    h, w = hw
    inside = None
    for pos, size in ((xs, w), (ys, h)):
        ok = ew(cap, "mul", ew(cap, "ge", pos, 0.0, "fp32"), ew(cap, "le", pos, size - 1.0,
                                                               "fp32"), MASK)
        inside = ok if inside is None else ew(cap, "mul", inside, ok, MASK)
    clamp = [cap.cast(ew(cap, "minimum", ew(cap, "maximum", pos, 0.0, "fp32"), size - 1.0,
                         "fp32"), INT) for pos, size in ((xs, w), (ys, h))]
    flat = ew(cap, "add", ew(cap, "add", ew(cap, "mul", clamp[1], w, INT), clamp[0], INT),
              base, INT)  # [N, Ho, Wo, 1]
    shape = cap.info(flat)[0]
    rows = gather_rows(cap, table, cap.reshape(flat, shape[:-1]), dtype)  # [N, Ho, Wo, C]
    factor = inside if weight is None else ew(cap, "mul", weight, inside, "fp32")
    return ew(cap, "mul", rows, factor, dtype)


@handles("grid_sampler_2d")
def _grid_sampler(cap: Capture, x, grid, mode: int, padding_mode: int, align_corners: bool):
    """F.grid_sample in 2-D, bilinear (mode 0) or nearest (1, half to even), zeros (0) or
    border (1) padding: the coordinates computed on the chip, each corner one row gather
    of x as [N*H*W, C]. Coordinates are held in the activation dtype: with bf16 they carry
    bf16's 8-bit precision (use fp32 activations where sub-pixel accuracy matters)."""
    shape, dtype = cap.out()
    if mode not in (0, 1) or padding_mode not in (0, 1):
        raise cap.fail("grid_sample is supported with mode 'bilinear' or 'nearest' and "
                       "padding_mode 'zeros' or 'border' (not bicubic or reflection)")
    n, c, h, w = cap.info(x)[0]
    _exact(cap, n * h * w, "grid_sample's input")
    table = _view(cap, x, (0, 2, 3, 1), (n * h * w, c))
    base = _const(cap, (torch.arange(n, dtype=torch.int32) * h * w).reshape(n, 1, 1, 1))
    xs, ys = (_unnormalize(cap, slice_(cap, grid, 3, k, k + 1), size, align_corners,
                           padding_mode == 1) for k, size in ((0, w), (1, h)))
    if mode == 1:
        xs, ys = (cap.emit("round", [p], cap.info(p)[0], "fp32") for p in (xs, ys))
        out = _corner(cap, table, xs, ys, None, (h, w), base, dtype)
    else:
        x0, y0 = (cap.emit("floor", [p], cap.info(p)[0], "fp32") for p in (xs, ys))
        x1, y1 = (ew(cap, "add", p, 1.0, "fp32") for p in (x0, y0))
        fx, fy = ew(cap, "sub", xs, x0, "fp32"), ew(cap, "sub", ys, y0, "fp32")
        gx, gy = ew(cap, "sub", x1, xs, "fp32"), ew(cap, "sub", y1, ys, "fp32")
        out = None
        for cx, cy, wx, wy in ((x0, y0, gx, gy), (x1, y0, fx, gy), (x0, y1, gx, fy),
                               (x1, y1, fx, fy)):
            term = _corner(cap, table, cx, cy, ew(cap, "mul", wx, wy, "fp32"), (h, w), base,
                           dtype)
            out = term if out is None else ew(cap, "add", out, term, dtype)
    rows = cap.reshape(out, (n, shape[2] * shape[3], c))  # one permute of the last two dims
    return cap.reshape(cap.permute(rows, (0, 2, 1)), shape)
