"""``torch.compile(model, backend=chipforge.torch_backend(chip=...))``: PyTorch models run
on the simulated chip.

Inference: dynamo hands over the model's FX graph with its parameters; it is exported to
core ATen, captured as a KernelGraph (parameters become constants), optionally quantized
with calibration inputs, compiled and run on the simulator for every call. Training (tensors
that require grad): aot_autograd splits the forward and backward graphs, each is compiled
with its parameters as inputs; see :mod:`chipforge.compiler.runtime._train`.

Inference runs when gradients are off (``torch.no_grad()``) or no input needs one; an eval
model called with gradients on goes down the training path (its outputs may be
differentiated), whose forward gives the same values. dynamo's ``view`` calls are
re-exported as ``reshape`` (the same values wherever ``view`` is valid); an exception
torch.export raises on the graph is a :class:`CompileError`.

Dynamic shapes: a graph dynamo gives with symbolic sizes (``dynamic=True``, or a batch size
that changed) is compiled for each concrete shape on its first call and cached by the
inputs' shapes and dtypes (``summary().shape_caches``); a seen shape is not compiled again.

No silent fallback: dynamo runs the code around a graph break eagerly on the host. Every
break the backend sees (the graph before it, or the graph resumed after it) is recorded in
``backend.breaks`` and reported with a :class:`ChipFallbackWarning`; ``strict=True`` makes
it a :class:`CompileError`. A backend failure is always raised, never handed to dynamo as
one of the fake-tensor exceptions it would quietly run eagerly (and if
``torch._dynamo.config.suppress_errors`` swallows it, the warning and
``backend.failures`` still say so). ``backend.summary()`` says what ran where.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chipforge.arch import load_chip
from chipforge.compiler.lower._kernel_graph import CompileError
from chipforge.compiler.lower._quant import QMAX, quantize_graph
from chipforge.compiler.runtime._runner import ChipRunner, feed
from chipforge.compiler.runtime._train import training_backend


class ChipFallbackWarning(RuntimeWarning):
    """Code of a compiled model that does not run on the chip (it runs eagerly on the host)."""


@dataclass(frozen=True)
class GraphBreak:
    """A place where dynamo split the model: the code there ran eagerly on the host."""

    function: str
    filename: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.line} in {self.function}: {self.reason}"


@dataclass
class ShapeCache:
    """A graph dynamo gave with symbolic sizes, compiled once per concrete input shape: the
    cache keys compiled (each input's (shape, dtype), or a size input's value), in order,
    and the calls that found their shape already compiled."""

    graph: str
    shapes: list[tuple] = field(default_factory=list)
    hits: int = 0

    def __str__(self) -> str:
        return (f"{self.graph}: dynamic shapes, compiled for {len(self.shapes)} shape(s), "
                f"{self.hits} call(s) reused one")


@dataclass
class BackendSummary:
    """What ran where: the graphs compiled for the chip (with their call counts) and the
    graph breaks and failures whose code ran on the host."""

    chip: str
    graphs: list[tuple[str, int, int]] = field(default_factory=list)  # (name, nodes, calls)
    breaks: list[GraphBreak] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    shape_caches: list[ShapeCache] = field(default_factory=list)

    @property
    def all_on_chip(self) -> bool:
        return bool(self.graphs) and not self.breaks and not self.failures

    def __str__(self) -> str:
        lines = [f"{len(self.graphs)} graph(s) on {self.chip}:"]
        lines += [f"  {name}: {nodes} kernel nodes, {calls} call(s)"
                  for name, nodes, calls in self.graphs]
        lines += [f"  {cache}" for cache in self.shape_caches]
        if self.breaks:
            lines.append(f"{len(self.breaks)} graph break(s); the code there ran eagerly on "
                         f"the host CPU:")
            lines += [f"  {b}" for b in self.breaks]
        if self.failures:
            lines.append("backend failures (their graphs did not run on the chip):")
            lines += [f"  {f}" for f in self.failures]
        if not self.graphs:
            lines.append("nothing has run on the chip yet")
        return "\n".join(lines)


_RESUME = re.compile(r"torch_dynamo_resume_in_(?:torch_dynamo_resume_in_)*(.+)_at_(\d+)$")


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "?")


def _break_counts() -> dict:
    """dynamo's graph-break messages and their counts so far (empty without torch)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    return dict(counters["graph_break"])


def _break_reason(reason: str, counted: dict) -> str:
    """The first line of dynamo's reason for a break and its hint, if it gives one; where
    the reason is only a step code ("step_unsupported"), those of the message dynamo
    counted for this break (the one whose count rose since the backend last looked, in
    ``counted``)."""
    now = _break_counts()
    new = [message for message, n in now.items() if n > counted.get(message, 0)]
    counted.clear()
    counted.update(now)
    if " " not in _first_line(reason) and new:
        reason = new[-1]
    lines = [line.strip() for line in str(reason).splitlines()]
    return "; ".join([_first_line(reason), *[ln for ln in lines if ln.startswith("Hint:")][:1]])


def _breaks_here(gm, counted: dict) -> list[GraphBreak]:
    """The graph breaks around the graph dynamo is compiling now: the one that ended it (its
    compile reason) and the one it resumes after (a ``torch_dynamo_resume_in_F_at_N``
    frame). Empty when dynamo's tracer is not reachable (a direct call)."""
    try:
        from torch._dynamo.symbolic_convert import InstructionTranslator

        tx = InstructionTranslator.current_tx()
        reason = tx.output.compile_subgraph_reason
        code = tx.f_code
    except Exception:  # noqa: BLE001 - private API: no tracer, no breaks to report
        return []
    found = []
    if resumed := _RESUME.match(code.co_name):
        found.append(GraphBreak(resumed[1], code.co_filename, int(resumed[2]),
                                "graph resumed after a break"))
    if reason is not None and reason.graph_break:
        frame = reason.user_stack[-1] if reason.user_stack else None
        found.append(GraphBreak(frame.name if frame else code.co_name,
                                frame.filename if frame else code.co_filename,
                                frame.lineno if frame else 0,
                                _break_reason(reason.reason, counted)))
    return found


def _record_breaks(backend, found: list[GraphBreak], strict: bool) -> None:
    for brk in found:
        known = {(b.function, b.filename, b.line): i for i, b in enumerate(backend.breaks)}
        key = (brk.function, brk.filename, brk.line)
        if key in known:  # the resumed graph's entry is replaced by the reason, if known
            if brk.reason != "graph resumed after a break":
                backend.breaks[known[key]] = brk
            continue
        message = (f"graph break at {brk}; that code runs eagerly on the host CPU, not on "
                   f"{backend.chip}")
        if strict:
            raise CompileError(f"torch_backend(strict=True): {message}")
        backend.breaks.append(brk)
        warnings.warn(f"chipforge: {message}", ChipFallbackWarning, stacklevel=2)


def _is_state(node) -> bool:
    """A dynamo placeholder that is a module parameter or buffer (not a user input)."""
    arg = node.meta.get("grapharg")
    name = arg.source.name if arg is not None else node.name
    name = name() if callable(name) else str(name)
    return "._parameters[" in name or "._buffers[" in name or "_parameters_" in node.name \
        or "_buffers_" in node.name


def _views_as_reshapes(gm) -> None:
    """Rewrite the ``view`` calls of dynamo's graph (``x.view(shape)``) as ``reshape``, in
    place. ``reshape`` returns the same view wherever ``view`` is valid, so the graph
    computes the same values; re-exported with ``torch.export``, a view of a reshaped
    transposed tensor can otherwise fail on strides the export traced differently from
    eager (GPT-2's attention output). ``x.view(dtype)`` (a bit cast) is kept."""
    import torch

    changed = False
    for node in gm.graph.nodes:
        is_view = (node.op == "call_method" and node.target == "view") or (
            node.op == "call_function" and node.target is torch.Tensor.view)
        if not is_view or any(isinstance(a, torch.dtype) for a in node.args[1:]) \
                or isinstance(node.kwargs.get("dtype"), torch.dtype):
            continue
        if node.op == "call_method":
            node.target = "reshape"
        else:
            node.target = torch.Tensor.reshape
        changed = True
    if changed:
        gm.recompile()


def _symbolic(example_inputs) -> bool:
    """Whether dynamo passed symbolic sizes: SymInt inputs or tensors with symbolic dims."""
    import torch

    return any(isinstance(x, torch.SymInt) or (isinstance(x, torch.Tensor) and any(
        isinstance(d, torch.SymInt) for d in x.shape)) for x in example_inputs)


def _host_scalars(gm) -> set[int]:
    """The inputs of dynamo's graph that are host numbers: size inputs (SymInt) and the 0-d
    tensors dynamo wraps Python floats in (``dynamic=True``) that the graph reads back only
    with ``.item()``. A compile per shape fixes them to their values."""
    import torch

    found = set()
    holders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for i, node in enumerate(holders):
        val = node.meta.get("example_value", node.meta.get("val"))
        if isinstance(val, torch.SymInt | torch.SymFloat | int | float):
            found.add(i)
        elif node.users and all(u.op == "call_method" and u.target == "item"
                                for u in node.users):
            found.add(i)
    return found


def _number(value) -> int | float:
    """A host number's value (a 0-d tensor's ``.item()``)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.item()
    if isinstance(value, int | float):
        return value
    raise CompileError(f"a dynamic-shape graph was called with {type(value).__name__} "
                       f"{value!r} for a size; only integers and 0-d tensors are supported")


def _shape_key(args, scalars: set[int]) -> tuple:
    """The compile-cache key of concrete call arguments: each tensor's shape and dtype,
    each host number's value."""
    return tuple(_number(a) if i in scalars else (tuple(a.shape), str(a.dtype)[6:])
                 for i, a in enumerate(args))


def _specialized(gm, args, scalars: set[int]):
    """A copy of dynamo's graph ``gm`` with its host-number inputs (positions ``scalars``)
    replaced by their values in ``args``: a static graph of the other inputs, which
    torch.export or aot_autograd re-trace at the tensors' concrete shapes."""
    import copy

    import torch

    graph = copy.deepcopy(gm.graph)
    holders = [n for n in graph.nodes if n.op == "placeholder"]
    for i in sorted(scalars):
        node, value = holders[i], _number(args[i])
        for user in list(node.users):
            if user.op == "call_method" and user.target == "item":
                user.replace_all_uses_with(value)
                graph.erase_node(user)
            else:
                user.replace_input_with(node, value)
        graph.erase_node(node)
    return torch.fx.GraphModule(gm, graph)


def _raised_in_torch(error: BaseException, part: str) -> bool:
    """Whether torch raised ``error`` (its innermost frame is not chipforge's) while in
    torch's ``part`` (a frame under torch/<part> on its traceback): a failure of
    torch.export ("export") or aot_autograd ("_functorch"), not a chipforge bug."""
    import os
    import traceback

    import torch

    frames = traceback.extract_tb(error.__traceback__)
    root = os.path.join(os.path.dirname(torch.__file__), part) + os.sep
    ours = os.path.dirname(os.path.dirname(os.path.dirname(__file__))) + os.sep
    return bool(frames) and not frames[-1].filename.startswith(ours) and any(
        frame.filename.startswith(root) for frame in frames)


def _fingerprint(graph) -> str:
    """A digest of everything a captured KernelGraph compiles from: its inputs, outputs,
    tensors, nodes (op, operands, attributes) and constants' values. Equal digests: the
    same program (dynamo gives a shape's graph again when it marks a dim dynamic)."""
    import hashlib

    digest = hashlib.sha256(repr((graph.inputs, graph.outputs, sorted(graph.tensors.items()),
                                  [(n.op, n.inputs, n.output, n.attrs) for n in graph.nodes]))
                            .encode())
    for name in sorted(graph.constants):
        value = graph.constants[name]
        digest.update(f"{name}:{value.dtype}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _bind_state(gm, example_inputs):
    """For inference: a module whose parameters and buffers are the values dynamo passed,
    held as buffers (so they become constants: weights can be quantized, batch norm
    folded), and the positions of the real user inputs. Later changes to the parameters
    are not seen: recompile after training."""
    import torch

    holders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    state = [i for i, n in enumerate(holders) if _is_state(n)]
    user = [i for i in range(len(holders)) if i not in state]

    class Bound(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gm = gm
            for j, i in enumerate(state):
                self.register_buffer(f"state{j}", example_inputs[i].detach().clone())

        def forward(self, *inputs):
            values = dict(zip(user, inputs))
            values.update({i: getattr(self, f"state{j}") for j, i in enumerate(state)})
            # node by node with dynamo's node metadata kept, so that torch.export records the
            # user's source lines rather than the generated code's
            with torch.fx.traceback.preserve_node_meta():
                return torch.fx.Interpreter(self.gm).run(
                    *(values[i] for i in range(len(holders))))

    return Bound().eval(), user


def torch_backend(chip: str = "forge-i1", *, quant: str | None = None,
                  calibration: Sequence[tuple] | None = None, dtype: str = "bf16",
                  strict: bool = False) -> Callable:
    """A ``torch.compile`` backend that runs graphs on ``chip``'s simulator.

    ``dtype`` is the floating-point storage and compute dtype ("bf16" by default).
    ``quant="int8"`` or ``"fp8"`` quantizes weight matmuls and convolutions after
    calibrating activation scales on ``calibration`` (a list of input tuples).
    The returned backend keeps every compiled graph in ``backend.runners``, the graph
    breaks it saw in ``backend.breaks`` (each also a :class:`ChipFallbackWarning`), and
    ``backend.summary()`` says what ran where (and, for graphs with dynamic shapes, the
    shapes compiled and the calls that reused one). ``strict=True`` turns any graph break
    into a :class:`CompileError`. A graph the chip cannot run always raises.
    """
    spec = load_chip(chip)
    qdtype = {"int8": "int8", "fp8": "fp8_e4m3", None: None}.get(quant, "?")
    if qdtype == "?":
        raise CompileError(f"quant={quant!r}; expected None, 'int8' or 'fp8'")
    if qdtype and qdtype not in QMAX:
        raise CompileError(f"quant dtype {qdtype!r} unsupported")
    if qdtype and not calibration:
        raise CompileError(f"quant={quant!r} needs calibration inputs (a list of input tuples)")

    def backend(gm, example_inputs):
        _record_breaks(backend, _breaks_here(gm, backend.break_counts), strict)
        if _symbolic(example_inputs):  # dynamic shapes: one compile per concrete shape
            return guarded(_per_shape, gm, example_inputs)
        return guarded(compile_for_chip, gm, example_inputs)

    def guarded(compile_fn, gm, example_inputs):
        """``compile_fn(gm, example_inputs)``; a failure is recorded and raised as a
        CompileError (never one of the exceptions dynamo would quietly run eagerly)."""
        from torch._dynamo.exc import exceptions_allowed_to_be_fallback

        try:
            return compile_fn(gm, example_inputs)
        except exceptions_allowed_to_be_fallback as e:  # dynamo would run these eagerly
            error = CompileError(f"{spec.name}: the graph needs a data-dependent value "
                                 f"({type(e).__name__}: {e}); it cannot run on the chip")
            _failed(backend, error)
            raise error from e
        except CompileError as e:
            _failed(backend, e)
            raise

    def _per_shape(gm, example_inputs):
        """A graph with symbolic sizes (``dynamic=True``, or dynamo's automatic dynamic
        shapes after a shape changed): compiled for each concrete shape it is called with,
        on first use, and cached by the shapes and dtypes of its inputs (and the values of
        its size inputs)."""
        entry = ShapeCache(f"graph {len(backend.shape_caches)}")
        backend.shape_caches.append(entry)
        compiled: dict[tuple, Callable] = {}
        scalars = _host_scalars(gm)

        def run(*args):
            key = _shape_key(args, scalars)
            tensors = [a for i, a in enumerate(args) if i not in scalars]
            fn = compiled.get(key)
            if fn is None:
                static = _specialized(gm, args, scalars)
                fn = compiled[key] = guarded(compile_for_chip, static, tensors)
                entry.shapes.append(key)
            else:
                entry.hits += 1
            return fn(*tensors)  # dynamo's calling convention: unboxed

        return run

    def compile_for_chip(gm, example_inputs):
        import torch
        from torch._dynamo.exc import exceptions_allowed_to_be_fallback

        # dynamo passes parameters as graph inputs: training if any input needs a gradient
        if torch.is_grad_enabled() and any(getattr(x, "requires_grad", False)
                                           for x in example_inputs):
            from torch.nn.attention import SDPBackend, sdpa_kernel

            try:
                # the math attention is differentiated op by op: no fused attention backward
                with sdpa_kernel([SDPBackend.MATH]):
                    return training_backend(spec.name, dtype, backend.runners)(gm,
                                                                               example_inputs)
            except (CompileError, *exceptions_allowed_to_be_fallback):
                raise
            except Exception as e:  # noqa: BLE001 - aot_autograd's own failures, made clean
                if not _raised_in_torch(e, "_functorch"):
                    raise
                raise CompileError(f"{spec.name}: aot_autograd could not trace the graph for "
                                   f"training ({type(e).__name__}: {_first_line(e)}); the "
                                   f"model cannot train on the chip as written") from e

        from chipforge.compiler.frontend._torch_export import capture

        _views_as_reshapes(gm)
        bound, user = _bind_state(gm, example_inputs)
        try:
            graph = capture(bound, tuple(example_inputs[i] for i in user), name="model")
        except CompileError:
            raise
        except Exception as e:  # noqa: BLE001 - torch.export's own failures, made clean
            if not _raised_in_torch(e, "export"):
                raise
            raise CompileError(f"{spec.name}: torch.export could not re-export the graph "
                               f"dynamo captured ({type(e).__name__}: {_first_line(e)}); "
                               f"the model cannot run on the chip as written") from e
        key = _fingerprint(graph)
        runner = backend.programs.get(key)
        if runner is None:  # a graph already compiled (by another dynamo graph) is reused
            if qdtype:
                graph = quantize_graph(graph, [feed(graph, c) for c in calibration], qdtype)
            runner = backend.programs[key] = ChipRunner(graph, spec.name, dtype)
            backend.runners.append(runner)
        return lambda *args: runner(*(args[i] for i in user))

    backend.chip = spec.name
    backend.runners = []
    backend.programs = {}  # inference: the fingerprint of a captured graph -> its runner
    backend.breaks = []
    backend.break_counts = _break_counts()  # dynamo's break messages and counts, last read
    backend.failures = []
    backend.shape_caches = []
    backend.summary = lambda: BackendSummary(
        spec.name, [(r.graph.name, len(r.graph.nodes), len(r.results)) for r in backend.runners],
        list(backend.breaks), list(backend.failures),
        [dataclasses.replace(c, shapes=list(c.shapes)) for c in backend.shape_caches])
    return backend


def _failed(backend, error: Exception) -> None:
    """Record a failed graph; if dynamo's ``suppress_errors`` will swallow the error (and
    run the graph eagerly), say so with a warning."""
    import torch

    backend.failures.append(str(error))
    if torch._dynamo.config.suppress_errors:
        warnings.warn(f"chipforge: a graph failed to compile for {backend.chip} and runs "
                      f"eagerly on the host (torch._dynamo.config.suppress_errors): {error}",
                      ChipFallbackWarning, stacklevel=2)
