"""No silent fallback (issue 11, point 2): integer-target cross-entropy trains on the chip,
and every graph break or data-dependent scalar is reported (a warning and the backend's
summary) or, with ``strict=True``, an error. The oracle is PyTorch on the CPU."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import chipforge  # noqa: E402
from chipforge.compiler import ChipFallbackWarning, CompileError  # noqa: E402


class Classifier(torch.nn.Module):
    def __init__(self, features: int = 16, classes: int = 5):
        super().__init__()
        self.hidden = torch.nn.Linear(features, 32)
        self.out = torch.nn.Linear(32, classes)

    def forward(self, x, targets):
        return F.cross_entropy(self.out(self.hidden(x).relu()), targets)


class Printing(torch.nn.Module):
    """A model dynamo must split: the print runs on the host."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(8, 8)
        self.b = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = self.a(x).relu()
        print("on the host")
        return self.b(y)


class ItemScale(torch.nn.Module):
    """Reads a host scalar from a computed tensor (``.item()``)."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(8, 8)

    def forward(self, x):
        y = self.a(x)
        return y / (y * y).sum().item()


def _fallbacks(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ChipFallbackWarning)]


@pytest.mark.parametrize("ignore", [False, True])
def test_integer_target_cross_entropy_trains_on_chip(ignore):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = Classifier()
    x = torch.randn(12, 16)
    targets = torch.randint(0, 5, (12,))
    if ignore:
        targets[[2, 7]] = -100  # F.cross_entropy's default ignore_index
    backend = chipforge.torch_backend(chip="forge-t1", strict=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = torch.compile(model, backend=backend, dynamic=False)(x, targets)
        loss.backward()
    chip_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ref = model(x, targets)
    ref.backward()
    assert not _fallbacks(caught)
    assert abs(loss.item() - ref.item()) <= 0.02 * ref.item()
    for got, want in zip(chip_grads, (p.grad for p in model.parameters())):
        # bf16 compute: errors of a few bf16 ulps of the largest gradient
        assert torch.allclose(got, want, atol=0.03 * want.abs().max().item(), rtol=0.03)
    summary = backend.summary()
    assert summary.all_on_chip and not summary.breaks
    assert sorted(name for name, _, calls in summary.graphs if calls == 1) == \
        ["backward", "forward"]


VARIANTS = {
    "sum": (lambda z, t: F.cross_entropy(z, t, reduction="sum"), (6, 5), (6,)),
    "label_smoothing": (lambda z, t: F.cross_entropy(z, t, label_smoothing=0.1), (6, 5), (6,)),
    "class_weights": (lambda z, t: F.cross_entropy(z, t, weight=torch.arange(1.0, 6.0)),
                      (6, 5), (6,)),
    "sequence": (lambda z, t: F.cross_entropy(z, t), (3, 5, 4), (3, 4)),  # [N, C, L]
    "nll_loss": (lambda z, t: F.nll_loss(F.log_softmax(z, -1), t), (6, 5), (6,)),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cross_entropy_variants_on_chip(name):
    """The loss and the logits' gradient of each variant against PyTorch."""
    loss_fn, z_shape, t_shape = VARIANTS[name]
    torch._dynamo.reset()
    torch.manual_seed(1)

    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.z = torch.nn.Parameter(torch.randn(*z_shape))

        def forward(self, targets):
            return loss_fn(self.z * 1.0, targets)

    model, targets = Loss(), torch.randint(0, 5, t_shape)
    backend = chipforge.torch_backend(chip="forge-t1", strict=True)
    loss = torch.compile(model, backend=backend, dynamic=False)(targets)
    loss.backward()
    got = model.z.grad.clone()
    model.z.grad = None
    ref = model(targets)
    ref.backward()
    assert abs(loss.item() - ref.item()) <= 0.01 * abs(ref.item())
    want = model.z.grad
    assert torch.allclose(got, want, atol=0.02 * want.abs().max().item(), rtol=0.02)
    assert backend.summary().all_on_chip


def test_graph_break_warns_and_is_in_the_summary():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = Printing().eval()
    x = torch.randn(2, 8)
    backend = chipforge.torch_backend(chip="forge-i1")
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = torch.compile(model, backend=backend, dynamic=False)(x)
        want = model(x)
    messages = _fallbacks(caught)
    assert len(messages) == 1 and "runs eagerly on the host CPU" in messages[0]
    summary = backend.summary()
    assert not summary.all_on_chip
    assert [(b.function, b.line) for b in summary.breaks] == [
        ("forward", Printing.forward.__code__.co_firstlineno + 2)]
    assert len(summary.graphs) == 2  # both halves still ran on the chip
    assert "graph break" in str(summary)
    assert torch.allclose(y, want, atol=0.05)


@pytest.mark.parametrize("model", [Printing, ItemScale])
def test_strict_turns_a_graph_break_into_an_error(model):
    torch._dynamo.reset()
    backend = chipforge.torch_backend(chip="forge-i1", strict=True)
    with torch.no_grad(), pytest.raises(Exception) as info:
        torch.compile(model().eval(), backend=backend, dynamic=False)(torch.randn(2, 8))
    error = info.value
    while not isinstance(error, CompileError) and error.__cause__ is not None:
        error = error.__cause__
    assert isinstance(info.value, CompileError) or "strict=True" in str(info.value)
    assert "graph break" in str(error) and "strict=True" in str(error)


def test_item_with_scalar_capture_runs_on_the_chip():
    """With dynamo's capture_scalar_outputs, ``t / s.item()`` stays on tensors (through a
    float64 round trip the capture drops): forward and backward run on the chip and match
    PyTorch, whose ``.item()`` likewise carries no gradient."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model, x = ItemScale(), torch.randn(4, 8)
    backend = chipforge.torch_backend(chip="forge-t1", strict=True)
    with torch._dynamo.config.patch(capture_scalar_outputs=True), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = torch.compile(model, backend=backend, dynamic=False)(x)
        (y * y).sum().backward()
    got = model.a.weight.grad.clone()
    model.zero_grad()
    want_y = model(x)
    (want_y * want_y).sum().backward()
    want = model.a.weight.grad
    assert not _fallbacks(caught) and backend.summary().all_on_chip
    assert torch.allclose(y, want_y, atol=0.02 * want_y.abs().max().item())
    assert torch.allclose(got, want, atol=0.03 * want.abs().max().item(), rtol=0.03)


def test_item_in_an_exported_model_is_a_clear_error():
    """The inference front end (torch.export) refuses ``.item()`` by name too."""
    from chipforge.compiler import capture, supported_ops

    with pytest.raises(CompileError, match=r"_local_scalar_dense.*\.item\(\).*data-dependent"):
        capture(ItemScale().eval(), (torch.randn(2, 8),))
    assert "_local_scalar_dense" not in supported_ops() + supported_ops(training=True)


class Cumulative(torch.nn.Module):
    """rfft has no kernel (complex values): the backend cannot compile this graph."""

    def forward(self, x):
        return torch.fft.rfft(x).real * 2.0


def test_a_failed_graph_raises():
    torch._dynamo.reset()
    backend = chipforge.torch_backend(chip="forge-i1")
    with torch.no_grad(), pytest.raises(Exception, match="_fft_r2c"):
        torch.compile(Cumulative(), backend=backend, dynamic=False)(torch.randn(2, 8))
    assert len(backend.failures) == 1 and not backend.runners
    # the error names the user's line, not dynamo's generated code
    assert "test_no_fallback.py:" in backend.failures[0] and "eval_with_key" not in \
        backend.failures[0]


def test_suppressed_errors_still_warn_and_are_in_the_summary():
    """dynamo's suppress_errors runs a failed graph eagerly: the backend says so."""
    torch._dynamo.reset()
    backend = chipforge.torch_backend(chip="forge-i1")
    x = torch.randn(2, 8)
    with torch._dynamo.config.patch(suppress_errors=True), torch.no_grad(), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = torch.compile(Cumulative(), backend=backend, dynamic=False)(x)
    messages = _fallbacks(caught)
    assert messages and "runs eagerly on the host" in messages[0] and "_fft_r2c" in messages[0]
    summary = backend.summary()
    assert not summary.all_on_chip and len(summary.failures) == 1
    assert "backend failures" in str(summary)
    assert torch.equal(y, torch.fft.rfft(x).real * 2.0)  # PyTorch ran it, eagerly
