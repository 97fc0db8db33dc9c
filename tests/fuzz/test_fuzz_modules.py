"""Fuzzed PyTorch modules (issue 14, point 4): random small compositions of layers and
tensor ops (Linear, conv, norms, activations, reshapes, transposes, slicing, indexing,
reductions, concatenation), random input dtypes and shapes (zero-size dims and negative
dims included), fed to ``capture`` + the simulator or to ``torch.compile`` with the chip
backend. Each gives PyTorch's result (bf16 on the chip: within 2e-2 of the largest
output, the model suite's bound) or one clean ChipforgeError line; never another
exception. Seeded: a failing case's seed is its test id."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable

import pytest
from fuzzkit import check_case

torch = pytest.importorskip("torch")

import chipforge  # noqa: E402
from chipforge.compiler import ChipRunner, capture  # noqa: E402

CHIP = "forge-i1"
CASES = 50
REL = 2e-2  # bf16 storage on the chip, against PyTorch fp32 (as tests/models)
Step = Callable[[torch.Tensor], torch.Tensor]


class Composed(torch.nn.Module):
    """The steps in order; modules among them are registered (their parameters exported)."""

    def __init__(self, steps: list[Step], names: list[str]) -> None:
        super().__init__()
        self.steps, self.names = steps, names
        self.layers = torch.nn.ModuleList(s for s in steps if isinstance(s, torch.nn.Module))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x


def _dim(rng: random.Random, rank: int) -> int:
    """A dimension index, negative half of the time."""
    d = rng.randrange(rank)
    return d - rank if rng.random() < 0.5 else d


def _any_rank(rng: random.Random, shape: tuple[int, ...]) -> tuple[str, Step]:
    """A shape-generic op: an activation, a reduction, a reshape, a slice or an index."""
    rank = len(shape)
    d = _dim(rng, rank)
    kind = rng.choice(["act", "act", "softmax", "reduce", "cat", "transpose", "slice",
                       "index", "scale", "where", "clamp", "flatten", "unary"])
    if kind == "act":
        name = rng.choice(["relu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh", "abs", "neg"])
        if name == "gelu_tanh":
            return name, lambda x: torch.nn.functional.gelu(x, approximate="tanh")
        return name, getattr(torch.nn.functional, name, None) or getattr(torch, name)
    if kind == "softmax":
        return f"softmax({d})", lambda x: torch.softmax(x, dim=d)
    if kind == "reduce":
        op, keep = rng.choice(["sum", "mean", "amax"]), rng.random() < 0.5
        if rank == 1 and not keep:
            keep = True  # a 0-d result ends the chain too early
        return f"{op}({d}, keepdim={keep})", lambda x: getattr(torch, op)(x, dim=d, keepdim=keep)
    if kind == "cat":
        return f"cat({d})", lambda x: torch.cat([x, x * 0.5], dim=d)
    if kind == "transpose" and rank >= 2:
        a, b = rng.sample(range(rank), 2)
        return f"transpose({a}, {b})", lambda x: x.transpose(a, b)
    if kind == "slice":
        start, step = rng.randrange(2), rng.choice([1, 2])
        where = (slice(None),) * (d % rank) + (slice(start, None, step),)
        return f"slice({d}, {start}::{step})", lambda x: x[where]
    if kind == "index" and shape[d] > 0:
        idx = torch.tensor([rng.randrange(shape[d]) for _ in range(rng.randint(1, 4))])
        return f"index_select({d}, {idx.tolist()})", lambda x: x.index_select(d, idx)
    if kind == "where":
        return "where(x > 0, x, 0.1 x)", lambda x: torch.where(x > 0, x, 0.1 * x)
    if kind == "clamp":
        return "clamp(-1, 1)", lambda x: x.clamp(-1.0, 1.0)
    if kind == "flatten" and rank >= 2:
        return "flatten(-2)", lambda x: x.flatten(-2)
    if kind == "unary":
        name = rng.choice(["sqrt", "log", "rsqrt", "reciprocal"])
        return f"{name}(|x| + 1)", lambda x: getattr(torch, name)(x.abs() + 1.0)
    return "scale", lambda x: x * 1.5 + 0.25


def _layer(rng: random.Random, shape: tuple[int, ...], spread: bool) -> tuple[str, Step] | None:
    """A layer with parameters that fits ``shape``, or None. Layer norm only where the
    values are ``spread`` (the input, a Linear's or conv's output): normalizing values that
    differ by a few bf16 steps (after sqrt(|x| + 1), say) turns rounding into O(1) errors,
    an ill-conditioned problem rather than a compiler fault."""
    rank, features = len(shape), shape[-1] if shape else 0
    choices = []
    if rank >= 1 and features > 0:
        choices += ["linear", "layernorm"] if spread else ["linear"]
    if rank == 4 and shape[1] > 0:
        choices += ["conv", "batchnorm", "pool"]
    if rank == 3 and features > 0:
        choices += ["bmm"]
    if not choices:
        return None
    kind = rng.choice(choices)
    if kind == "linear":
        out = rng.randint(1, 8)
        return f"Linear({features}, {out})", torch.nn.Linear(features, out,
                                                             bias=rng.random() < 0.7)
    if kind == "layernorm":
        return f"LayerNorm({features})", torch.nn.LayerNorm(features)
    if kind == "conv":
        k, stride = rng.choice([1, 3]), rng.choice([1, 2])
        out = rng.randint(1, 6)
        return f"Conv2d({shape[1]}, {out}, {k}, stride={stride})", torch.nn.Conv2d(
            shape[1], out, k, stride=stride, padding=k // 2)
    if kind == "batchnorm":
        bn = torch.nn.BatchNorm2d(shape[1])
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        return f"BatchNorm2d({shape[1]})", bn
    if kind == "pool" and min(shape[2:]) >= 2:
        return "MaxPool2d(2)", torch.nn.MaxPool2d(2)
    if kind == "bmm":
        return "x @ x^T", lambda x: x @ x.transpose(-1, -2)
    return None


def _input(rng: random.Random) -> tuple[torch.Tensor, list[str]]:
    rank = rng.choice([2, 3, 4])
    shape = [rng.randint(1, 5) for _ in range(rank)]
    if rank == 4:
        shape[2] = shape[3] = rng.randint(2, 6)
    if rng.random() < 0.05:
        shape[rng.randrange(rank)] = 0  # a zero-size dim
    dtype = rng.choices([torch.float32, torch.bfloat16, torch.float16, torch.float64],
                        weights=[8, 1, 1, 1])[0]
    g = torch.Generator().manual_seed(rng.randrange(1 << 30))
    return torch.randn(*shape, generator=g).to(dtype), [f"input {shape} {dtype}"]


def case(seed: int) -> tuple[Composed, torch.Tensor]:
    """Seed -> an fp32 module of 1-5 steps and an input (of a random dtype) it runs on."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    x, names = _input(rng)
    steps: list[Step] = []
    if rng.random() < 0.1:  # token ids (int64) into an embedding table
        x = torch.randint(0, 10, tuple(x.shape[:2]))
        steps, names = [torch.nn.Embedding(10, 4)], [f"input {list(x.shape)} int64", "Embedding"]
    with torch.no_grad():
        probe, spread = (steps[0](x) if steps else x.float()), True
    for _ in range(rng.randint(1, 5)):
        made = _layer(rng, tuple(probe.shape), spread) if rng.random() < 0.4 else None
        name, step = made or _any_rank(rng, tuple(probe.shape))
        try:
            with torch.no_grad():
                nxt = step(probe)
        except (RuntimeError, IndexError):
            continue  # the op does not fit this shape in PyTorch either: skip it
        if nxt.dim() == 0:
            continue
        steps.append(step)
        names.append(name)
        probe, spread = nxt, name.startswith(("Linear", "Conv2d"))
    return Composed(steps, names).eval(), x


def _on_chip(model: Composed, x: torch.Tensor, through_dynamo: bool) -> torch.Tensor:
    """``model`` (in ``x``'s floating dtype) on the chip through capture or torch.compile;
    dynamo's wrapper around a backend error is taken off (the user reads the chipforge
    error)."""
    model = copy.deepcopy(model)
    if x.is_floating_point():
        model = model.to(x.dtype)
    if not through_dynamo:
        graph = capture(model, (x,), name="fuzz")
        return ChipRunner(graph, CHIP, "bf16")(x)[0]
    torch._dynamo.reset()
    backend = chipforge.torch_backend(CHIP, strict=True)
    try:
        with torch.no_grad():
            out = torch.compile(model, backend=backend, dynamic=False)(x)
    except torch._dynamo.exc.BackendCompilerFailed as e:  # dynamo wraps the backend's error
        raise e.inner_exception from None
    finally:
        torch._dynamo.reset()
    assert backend.summary().all_on_chip, str(backend.summary())
    return out


@pytest.fixture(scope="module", autouse=True)
def warm_dynamo():
    """Dynamo's first compile in a process imports and sets up much of torch (seconds),
    more than a fuzz case's time limit; pay it once here."""
    with torch.no_grad():
        torch.compile(torch.nn.Linear(2, 2), backend="eager")(torch.ones(1, 2))
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(CASES))
def test_module_gives_pytorchs_result_or_a_clean_error(seed):
    model, x = case(seed)
    with torch.no_grad():
        want = model(x.float() if x.is_floating_point() else x)
    status, got = check_case(lambda: _on_chip(model, x, through_dynamo=seed % 5 == 4))
    if status == "ok":
        assert got.shape == want.shape, model.names
        if want.numel():
            scale = want.abs().max().item()
            err = (got.float() - want).abs().max().item()
            assert err <= REL * scale + 1e-6, (model.names, err, scale)
