"""The state of one PyTorch capture and the FX node walk both front ends share.

:func:`walk` maps the nodes of a core-ATen FX graph into a :class:`KernelGraph`: any node
whose tensor inputs are all known at capture time (:class:`Const`: weights, buffers,
masks, RoPE tables, ``arange``/``full`` results) is evaluated with torch right away
("constant folding"); every other node is handed to its ATen handler, which maps it onto
``KERNEL_OPS`` and returns a :class:`Dyn` (a tensor computed from the graph inputs). The
handlers live in ``_aten_ops``, ``_aten_nn``, ``_aten_math``, ``_aten_index``, ``_aten_layout``
and ``_aten_training``, each module with its
own table (made with :func:`registrar`); ``_handlers`` assembles the table a
:class:`Capture` is given. The two front ends are ``_torch_export.capture`` (inference,
``torch.export``) and ``_aot_autograd.capture_fx`` (training). Import this module only
where torch is installed.
"""

from __future__ import annotations

import dataclasses
import operator
import os
import re
from collections.abc import Callable

import numpy as np
import torch
from torch.fx.node import map_arg
from torch.utils._pytree import tree_flatten, tree_map

from chipforge.compiler.lower._kernel_graph import KERNEL_OPS, CompileError, KernelGraph, KernelNode

DTYPES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16",
          torch.int64: "int32", torch.int32: "int32", torch.int8: "int8"}
_TORCH_DIR = os.path.dirname(torch.__file__)
_FRAME = re.compile(r'\s*File "(.+)", line (\d+)')


class Dyn(str):
    """The KernelGraph name of a tensor computed from the graph inputs."""


@dataclasses.dataclass
class Const:
    """A tensor known at capture time; ``name`` is its KernelGraph name once materialized (a
    reshaped copy keeps the name, and one of a different shape is given a fresh name)."""

    value: torch.Tensor
    name: str
    root: str = ""  # the parameter or buffer it derives from, for readable names


@dataclasses.dataclass
class Deferred:
    """A boolean test (``_TESTS``) of computed values that the capture's table has no handler
    for (``any``/``all`` where no reduction handles them): allowed where a handler recognizes
    the pattern (SDPA's guard for fully masked rows) and in a runtime assertion (dropped: a
    static chip program cannot raise); any other use fails as an unsupported ``node``, the
    op that made it."""

    node: torch.fx.Node


_TESTS = ("eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
          "any", "all")
_ASSERTS = ("_assert_async", "_assert_scalar")


def chip_dtype(dtype: torch.dtype, what: str) -> str:
    if dtype not in DTYPES:
        raise CompileError(f"{what} has dtype {dtype}; supported: "
                           f"{', '.join(str(d) for d in DTYPES)}")
    return DTYPES[dtype]


def source_of(node: torch.fx.Node) -> str:
    """Where the user's code made ``node``: ``FILE:LINE `code``` of the innermost recorded
    frame outside torch (PyTorch records ``forward`` frames only), then ``in module PATH
    (TYPE)`` for the innermost named submodule; ``graph node NAME`` if neither is known."""
    lines = (node.meta.get("stack_trace") or "").splitlines()
    frames = []
    for i, line in enumerate(lines):
        if m := _FRAME.match(line):
            code = lines[i + 1].strip() if i + 1 < len(lines) else ""
            frames.append((m[1], m[2], "" if _FRAME.match(code) else code))
    parts = []
    user = [f for f in frames if not f[0].startswith(_TORCH_DIR)]
    if user:
        path, line, code = user[-1]
        parts.append(f"{path}:{line} `{code}`" if code else f"{path}:{line}")
    modules = [v for v in (node.meta.get("nn_module_stack") or {}).values() if v[0]]
    if modules:
        path, kind = modules[-1]
        kind = kind if isinstance(kind, str) else getattr(kind, "__qualname__", str(kind))
        parts.append(f"in module {path} ({kind.rsplit('.', 1)[-1]})")
    return " ".join(parts) or f"graph node {node.name}"


class Capture:
    """The state of one capture: the KernelGraph being built and the FX node being mapped.
    ``handlers`` maps ATen op names (overload packets) to handlers (``_handlers``);
    ``training`` marks a training capture."""

    def __init__(self, name: str, handlers: dict[str, Callable], *, training: bool = False):
        self.graph = KernelGraph(name=name)
        self.training = training
        self.handlers = handlers
        self.node: torch.fx.Node | None = None
        self.source = ""
        self._counts: dict[str, int] = {}
        self._materialized: dict[tuple, str] = {}
        self.producer: dict[str, KernelNode] = {}  # computed tensor -> the node computing it
        self.env: dict[torch.fx.Node, object] = {}  # FX node -> its value

    # ---- errors and node metadata -----------------------------------------------------

    def fail(self, message: str) -> CompileError:
        return CompileError(f"{self.node.target} at {self.source}: {message}")

    def unsupported(self, node: torch.fx.Node) -> CompileError:
        capture = "training" if self.training else "inference"
        return CompileError(f"unsupported PyTorch op {node.target} at {source_of(node)}: no "
                            f"{capture} handler maps it onto the chip's kernel ops; `chipforge "
                            f"ops --missing` lists the Core ATen ops that are not supported and "
                            f"why. Write this line with supported ops, or keep it outside the "
                            f"compiled region")

    def out(self, index: int | None = None) -> tuple[tuple[int, ...], str]:
        """Shape and chip dtype of the current FX node's (``index``-th, default first)
        result; a bool result is a 1.0 / 0.0 mask, "fp32"."""
        val = self.node.meta["val"]
        if isinstance(val, tuple | list):
            val = val[index or 0]
        shape = tuple(int(s) for s in val.shape)
        if val.dtype == torch.bool:
            return shape, "fp32"
        return shape, chip_dtype(val.dtype, f"result of {self.node}")

    # ---- tensors ----------------------------------------------------------------------

    def info(self, v: Dyn | Const) -> tuple[tuple[int, ...], str]:
        if isinstance(v, Const):
            dtype = "fp32" if v.value.dtype in (torch.bool, torch.float64) else None
            return tuple(v.value.shape), dtype or chip_dtype(v.value.dtype, f"constant {v.name}")
        t = self.graph.tensors[v]
        return t.shape, t.dtype

    def name(self, v: Dyn | Const, dtype: str | None = None, rank: int = 0) -> str:
        """The KernelGraph name of ``v``; a constant is added (as ``dtype``, its shape padded
        with leading 1s to ``rank``) the first time it is read."""
        if not isinstance(v, Const):
            return v if dtype is None or self.info(v)[1] == dtype else self.cast(v, dtype)
        value = v.value.detach()
        dtype = dtype or self.info(v)[1]
        shape = (1,) * (rank - value.ndim) + tuple(value.shape)
        key = (v.name, dtype, shape)
        if key not in self._materialized:
            name = v.name if not any(k[0] == v.name for k in self._materialized) else self.fresh()
            if dtype in ("int32", "int8"):
                array = value.to(torch.int64)
                if array.numel() and (array.min() < -2**31 or array.max() >= 2**31):
                    raise self.fail(f"constant {v.name} holds integers beyond int32 (the "
                                    f"chip's integer dtype)")
                array = array.numpy().astype(np.int32)
            else:
                array = value.to(torch.float32).numpy()
            self.graph.add_constant(name, array.reshape(shape), dtype)
            self._materialized[key] = name
        return self._materialized[key]

    def fresh(self) -> str:
        base = self.node.name if self.node is not None else "const"
        self._counts[base] = self._counts.get(base, 0) + 1
        return f"{base}.{self._counts[base]}"

    def emit(self, op: str, inputs, out_shape, out_dtype: str, /, **attrs) -> Dyn:
        names = tuple(self.name(v) for v in inputs)
        if op not in KERNEL_OPS:
            raise self.fail(f"internal: {op!r} is not a kernel op")
        # KernelGraph.add_node's own ``shape`` parameter would swallow the reshape/expand attr
        output = self.graph.add_tensor(self.fresh(), out_shape, out_dtype)
        self.graph.nodes.append(KernelNode(op, names, output, tuple(sorted(attrs.items())),
                                      self.source))
        self.producer[output] = self.graph.nodes[-1]
        return Dyn(output)

    def rename_last(self, new: str) -> Dyn:
        """Give the last node's output the name ``new``."""
        node = self.graph.nodes[-1]
        self.graph.tensors[new] = self.graph.tensors.pop(node.output)
        self.graph.nodes[-1] = self.producer[new] = dataclasses.replace(node, output=new)
        del self.producer[node.output]
        return Dyn(new)

    def unreshaped(self, v):
        """The tensor a reshape node read, if ``v`` is one's output, else ``v``."""
        node = self.producer.get(v) if isinstance(v, Dyn) else None
        return Dyn(node.inputs[0]) if node is not None and node.op == "reshape" else v

    def cast(self, v: Dyn, dtype: str) -> Dyn:
        return self.emit("cast", [v], self.info(v)[0], dtype)

    def reshape(self, v: Dyn | Const, shape) -> Dyn | Const:
        shape = tuple(int(s) for s in shape)
        if self.info(v)[0] == shape:
            return v
        if isinstance(v, Const):  # same name: materialized under a fresh one if need be
            return Const(v.value.reshape(shape), v.name, v.root)
        v = self.unreshaped(v)  # reshape(reshape(x)) is reshape(x)
        if self.info(v)[0] == shape:
            return v
        return self.emit("reshape", [v], shape, self.info(v)[1], shape=shape)

    def permute(self, v: Dyn, dims) -> Dyn:
        """``v`` permuted by ``dims``: one kernel op ``permute`` of the original (a permute of
        a permute is composed), or two where the last dim would land before second-to-last
        (the permute kernel moves it at most there): first the last dim to second-to-last
        with the final last dim after it, then a permute that keeps the last dim."""
        dims = tuple(int(d) for d in dims)
        inner = self.producer.get(v) if isinstance(v, Dyn) else None
        if inner is not None and inner.op == "permute":  # one permute of the original
            v, dims = Dyn(inner.inputs[0]), tuple(inner.attr("dims")[d] for d in dims)
        if dims == tuple(range(len(dims))):
            return v
        last = len(dims) - 1
        if last >= 2 and last not in dims[-2:]:
            first = tuple(d for d in range(last) if d != dims[-1]) + (last, dims[-1])
            v = self._permute_once(v, first)
            dims = tuple(first.index(d) for d in dims)
        return self._permute_once(v, dims)

    def _permute_once(self, v, dims: tuple[int, ...]) -> Dyn:
        shape, dtype = self.info(v)
        return self.emit("permute", [v], [shape[d] for d in dims], dtype, dims=dims)


def _fold(node: torch.fx.Node, args, kwargs):
    """Evaluate ``node`` with torch on known values; tensors come back as :class:`Const`."""
    def unwrap(v):
        return v.value if isinstance(v, Const) else v

    with torch.no_grad():
        result = node.target(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))
    roots = [v.root for v in tree_flatten((args, kwargs))[0] if isinstance(v, Const)]
    root = roots[0] if roots else node.name
    name = f"{root}_{node.name}" if roots else node.name
    if isinstance(result, torch.Tensor):
        return Const(result, name, root)
    if isinstance(result, tuple | list):
        return type(result)(Const(r, f"{name}_{i}", root) if isinstance(r, torch.Tensor) else r
                            for i, r in enumerate(result))
    return result


def registrar(table: dict[str, Callable]) -> Callable:
    """The decorator ``@handles("op", ...)`` that enters a handler into ``table`` under each
    ATen op name (overload packet) given."""
    def handles(*names: str):
        def register(fn):
            for name in names:
                table[name] = fn
            return fn
        return register
    return handles


# ops whose result shape depends on the data (no static program has it)
DATA_DEPENDENT = ("nonzero", "masked_select", "_unique2", "unique_dim", "unique_consecutive",
                  "repeat_interleave")
# ops with a handler only to refuse them by name (not "supported"): host scalars and
# data-dependent result shapes
REFUSED = frozenset({"_local_scalar_dense", *DATA_DEPENDENT})


def op_names(handlers: dict[str, Callable]) -> list[str]:
    """The sorted ATen op names ``handlers`` maps (the internal assertions left out)."""
    return sorted(name for name in handlers
                  if not name.startswith("_assert") and name not in REFUSED)


def _draws_random(node: torch.fx.Node, args) -> bool:
    """Whether ``node`` is a random op (PyTorch tags them ``nondeterministic_seeded``); a
    dropout of probability 0 draws nothing that matters and is not one."""
    tags = getattr(node.target, "tags", ())
    if torch.Tag.nondeterministic_seeded not in tags:
        return False
    packet = getattr(getattr(node.target, "overloadpacket", None), "__name__", None)
    return not (packet in ("native_dropout", "dropout") and len(args) > 1 and args[1] == 0)


def _call(cap: Capture, node: torch.fx.Node, env: dict):
    args = map_arg(node.args, env.__getitem__)
    kwargs = map_arg(node.kwargs, env.__getitem__)
    if node.target is operator.getitem:
        value = args[0][args[1]]
        if value is None:
            raise cap.fail(f"output {args[1]} of {node.args[0].target} is used; only its "
                           f"first output is supported")
        return value
    flat = tree_flatten((args, kwargs))[0]
    deferred = [v.node for v in flat if isinstance(v, Deferred)]
    if not deferred and not any(isinstance(v, Dyn) for v in flat):
        if _draws_random(node, args):
            raise cap.fail("it draws random numbers, and the chip has no random number "
                           "generator (folding it at capture time would freeze one draw "
                           "into the program); make the random tensor outside the compiled "
                           "call and pass it in as an input")
        return _fold(node, args, kwargs)
    packet = getattr(getattr(node.target, "overloadpacket", None), "__name__", None)
    if deferred and packet in _ASSERTS:  # a data-dependent check (e.g. one_hot's range)
        return None
    if packet in _TESTS and (deferred or packet not in cap.handlers):
        return Deferred(deferred[0] if deferred else node)
    guard = packet == "where" and deferred == [getattr(args[0], "node", None)]
    if packet not in cap.handlers or (deferred and not guard):  # a test only as where's mask
        raise cap.unsupported(deferred[0] if deferred else node)
    before = len(cap.graph.nodes)
    result = cap.handlers[packet](cap, *args, **kwargs)
    last = cap.graph.nodes[-1] if len(cap.graph.nodes) > before else None
    if isinstance(result, Dyn) and last is not None and last.output == result:
        result = cap.rename_last(node.name)  # the FX name for the final node
    return result


def _prune(graph: KernelGraph) -> None:
    """Drop nodes and constants that no graph output depends on."""
    live = set(graph.outputs)
    kept: list[KernelNode] = []
    for node in reversed(graph.nodes):
        if node.output in live:
            kept.append(node)
            live.update(node.inputs)
    graph.nodes = kept[::-1]
    graph.constants = {k: v for k, v in graph.constants.items() if k in live}
    keep = live | set(graph.inputs)
    graph.tensors = {k: v for k, v in graph.tensors.items() if k in keep}


def tensor_attribute(gm: torch.fx.GraphModule, node: torch.fx.Node, what: str) -> Const:
    """The tensor a ``get_attr`` node of ``gm`` reads, as a constant (anything else is a
    clean error naming ``what`` captured it)."""
    value = operator.attrgetter(node.target)(gm)
    if not isinstance(value, torch.Tensor):
        raise CompileError(f"{what}: attribute {node.target} is a {type(value).__name__}; "
                           f"only tensor attributes are supported")
    return Const(value.detach(), node.name, node.name)


def add_input(cap: Capture, node: torch.fx.Node, val, what: str) -> Dyn:
    """The FX placeholder ``node`` (of value ``val``) as a graph input; a bool tensor is a
    1.0 / 0.0 mask, "fp32" (as the runtime feeds it)."""
    if not isinstance(val, torch.Tensor):
        raise CompileError(f"{what}: input {node.name} is {val!r}; only tensor inputs are "
                           f"supported")
    try:
        shape = tuple(int(s) for s in val.shape)
    except TypeError as e:  # a symbolic size does not convert
        raise CompileError(f"{what}: input {node.name} has the dynamic shape {tuple(val.shape)}; "
                           f"only static shapes are supported") from e
    dtype = "fp32" if val.dtype == torch.bool else chip_dtype(val.dtype, f"input {node.name}")
    cap.graph.add_tensor(node.name, shape, dtype)
    cap.graph.inputs.append(node.name)
    return Dyn(node.name)


def _refuse_host_scalars(cap: Capture, fx_graph: torch.fx.Graph) -> None:
    """Fail at the first host-scalar read (``.item()``: one of ``REFUSED``) of a value computed
    from the graph inputs, before any op on its way (a float64 cast, say) fails less
    clearly. Reads of constants are folded as usual."""
    computed: set[torch.fx.Node] = set()
    for node in fx_graph.nodes:
        if node.op == "placeholder" or any(a in computed for a in node.all_input_nodes):
            computed.add(node)
            packet = getattr(getattr(node.target, "overloadpacket", None), "__name__", None)
            if packet in REFUSED and packet in cap.handlers and node.op == "call_function":
                cap.node, cap.source = node, source_of(node)
                cap.handlers[packet](cap, None)  # raises the op's own error


def walk(cap: Capture, fx_graph: torch.fx.Graph, placeholder, *, get_attr=None,
         what: str = "capture") -> list:
    """Map the nodes of ``fx_graph`` into ``cap.graph``: each placeholder's value is
    ``placeholder(node)``, each get_attr's ``get_attr(node)``, each call's its handler's
    result. Returns the values the graph outputs, nested tuples flattened (None kept)."""
    _refuse_host_scalars(cap, fx_graph)
    env = cap.env
    for node in fx_graph.nodes:
        cap.node, cap.source = node, source_of(node)
        if node.op == "placeholder":
            env[node] = placeholder(node)
        elif node.op == "get_attr" and get_attr is not None:
            env[node] = get_attr(node)
        elif node.op == "call_function":
            env[node] = _call(cap, node, env)
        elif node.op == "output":
            values = tree_flatten(map_arg(node.args[0], env.__getitem__))[0]
            for value in values:
                if isinstance(value, Deferred):
                    raise cap.unsupported(value.node)
            return values
        else:
            raise CompileError(f"{what}: unexpected FX node {node.op} {node.target}")
    raise CompileError(f"{what}: the FX graph has no output node")


def finish(cap: Capture) -> KernelGraph:
    """The captured graph, its dead nodes dropped, validated."""
    _prune(cap.graph)
    cap.graph.validate()
    return cap.graph
