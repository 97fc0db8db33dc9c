"""An fp32 model stored in bf16: finite values beyond bf16's range saturate instead of
becoming inf. ``torch.finfo(torch.float32).min`` is how most models mask (Hugging Face's
attention masks); rounded to -inf in bf16 it turned a fully masked softmax row into NaN,
where PyTorch in fp32 gives a uniform row. True infinities stay infinite."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from chipforge.compiler import ChipRunner, capture  # noqa: E402

_MIN = torch.finfo(torch.float32).min


class _MaskedSoftmax(torch.nn.Module):
    def forward(self, x, keep):
        return torch.softmax(x + torch.where(keep, 0.0, _MIN), -1)


class _ConstantMask(torch.nn.Module):
    def __init__(self):
        super().__init__()
        bias = torch.full((3, 8), _MIN).triu(1)
        bias[1] = _MIN  # a fully masked row
        self.register_buffer("bias", bias)

    def forward(self, x):
        return torch.softmax(x + self.bias, -1), x.masked_fill(x > 0.5, float("-inf"))


def _inputs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, generator=gen)
    keep = torch.rand(3, 8, generator=gen) > 0.3
    keep[1] = False  # a fully masked row
    return x, keep


def test_computed_float32_min_mask_keeps_a_fully_masked_row_uniform():
    x, keep = _inputs()
    got = ChipRunner(capture(_MaskedSoftmax(), (x, keep)), "forge-i1", "bf16")(x, keep)[0]
    want = _MaskedSoftmax()(x, keep)
    got = torch.as_tensor(got).float()
    assert not got.isnan().any()
    assert torch.allclose(got, want, atol=4e-3)  # bf16 storage of probabilities <= 1


def test_constant_float32_min_saturates_and_true_infinities_stay():
    x = _inputs()[0]
    probs, filled = (torch.as_tensor(t).float()
                     for t in ChipRunner(capture(_ConstantMask(), (x,)), "forge-i1", "bf16")(x))
    want_probs, want_filled = _ConstantMask()(x)
    assert torch.allclose(probs, want_probs, atol=4e-3)
    assert torch.equal(filled.isneginf(), want_filled.isneginf())
