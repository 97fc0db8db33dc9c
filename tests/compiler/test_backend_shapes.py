"""The ``torch.compile`` backend as models are written (issue 14): ``view`` after a
reshape of a transposed tensor (GPT-2's attention), torch.export's own failures as clean
errors, both grad modes, and shapes that change between calls. The oracle is PyTorch on
the same inputs."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import chipforge  # noqa: E402
from chipforge.compiler import CompileError  # noqa: E402


def _compile_error(info) -> CompileError | None:
    """The CompileError a dynamo exception carries (dynamo wraps a backend's error)."""
    error = info.value
    while error is not None and not isinstance(error, CompileError):
        error = getattr(error, "inner_exception", None) or error.__cause__
    return error


def _close(got, want, tol: float = 2e-2) -> bool:
    """bf16 compute: within ``tol`` of the largest output."""
    return bool((got - want).abs().max() <= tol * want.abs().max())


class TransposedView(torch.nn.Module):
    """GPT-2's attention tail: heads [B, H, T, D] moved back to [B, T, H*D] with transpose,
    contiguous and reshape, then ``.view(-1, C)`` for the projection."""

    def __init__(self, heads: int = 2, dim: int = 8):
        super().__init__()
        self.heads = heads
        self.proj = torch.nn.Linear(heads * dim, heads * dim)

    def forward(self, x):
        b, t, c = x.shape
        h = x.view(b, t, self.heads, -1).transpose(1, 2)
        h = torch.nn.functional.scaled_dot_product_attention(h, h, h)
        h = h.transpose(1, 2).contiguous().reshape(b, t, -1).contiguous()
        return self.proj(h.view(-1, c)).view(b, t, c)


def test_view_of_a_reshaped_transpose_runs_on_the_chip():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model, x = TransposedView().eval(), torch.randn(2, 4, 16)
    backend = chipforge.torch_backend(chip="forge-i1")
    with torch.no_grad():
        got = torch.compile(model, backend=backend, dynamic=False)(x)
        want = model(x)
    assert _close(got, want)
    assert backend.summary().all_on_chip


def test_gpt2_runs_through_torch_compile():
    transformers = pytest.importorskip("transformers")
    torch._dynamo.reset()
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=128, n_embd=64, n_layer=2, n_head=4,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2Model(config).eval()
    ids = torch.randint(0, 128, (2, 16))
    backend = chipforge.torch_backend(chip="forge-i1")
    with torch.no_grad():
        got = torch.compile(model, backend=backend)(ids).last_hidden_state
        want = model(ids).last_hidden_state
    assert _close(got, want)
    assert backend.summary().all_on_chip


def test_a_torch_export_failure_is_a_clean_error(monkeypatch):
    """Whatever torch.export raises on dynamo's graph comes back as a CompileError."""
    import torch.export._trace

    def broken(*args, **kwargs):
        raise ValueError("Cannot view a tensor with shape [2, 16, 64]")

    monkeypatch.setattr(torch.export._trace, "_export", broken)
    torch._dynamo.reset()
    backend = chipforge.torch_backend(chip="forge-i1")
    with torch.no_grad(), pytest.raises(Exception) as info:
        torch.compile(torch.nn.Linear(4, 4), backend=backend, dynamic=False)(torch.randn(2, 4))
    error = _compile_error(info)
    assert error is not None
    assert "torch.export" in str(error) and "ValueError: Cannot view" in str(error)
    assert len(backend.failures) == 1
