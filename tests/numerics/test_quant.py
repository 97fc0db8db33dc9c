"""quantize / dequantize / requantize, per tensor and per channel, against torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from chipforge.numerics import dequantize, quantize, requantize

RNG = np.random.default_rng(3)


def torch_q(x: np.ndarray, scale, zp, per_channel: bool) -> np.ndarray:
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's quantized tensors are deprecated, not gone
        t = torch.from_numpy(x)
        if per_channel:
            q = torch.quantize_per_channel(t, torch.tensor(scale, dtype=torch.float64),
                                           torch.tensor(zp), x.ndim - 1, torch.qint8)
        else:
            q = torch.quantize_per_tensor(t, float(scale), int(zp), torch.qint8)
        return q.int_repr().numpy(), q.dequantize().numpy()


def near_tie(x: np.ndarray, scale) -> np.ndarray:
    """Where x / scale is within a few float32 ulps of a half-integer: the only places
    torch (fma(x, 1/scale, zp), rounded to float32, then rint) may differ from us."""
    y = x.astype(np.float64) / np.asarray(scale, np.float32).astype(np.float64)
    frac = np.abs(y - np.floor(y) - 0.5)
    return frac <= 4 * np.spacing(np.abs(y).astype(np.float32)).astype(np.float64) + 1e-12


def test_per_tensor_matches_torch_exactly_for_a_power_of_two_scale():
    x = (RNG.standard_normal(100_000) * 40).astype(np.float32)
    x[:4] = [0.5, 1.5, -2.5, 1e9]  # ties to even, saturation
    ours = quantize(x, 0.25, 3)
    theirs, deq = torch_q(x, 0.25, 3, per_channel=False)
    assert np.array_equal(ours, theirs)
    assert np.array_equal(dequantize(ours, 0.25, 3), deq)
    assert ours[:4].tolist() == [5, 9, -7, 127]


@pytest.mark.parametrize("scale", [0.1, 0.037, 1 / 3])
def test_per_tensor_differs_from_torch_only_at_near_ties(scale):
    x = (RNG.standard_normal(200_000) * 3).astype(np.float32)
    ours = quantize(x, scale, -5)
    theirs, deq = torch_q(x, scale, -5, per_channel=False)
    diff = ours.astype(np.int32) != theirs
    assert np.abs(ours.astype(np.int32) - theirs).max() <= 1
    assert diff.sum() <= 20  # about 1 in 10**5 of random data
    assert near_tie(x, scale)[diff].all()
    assert np.array_equal(dequantize(theirs.astype(np.int8), scale, -5), deq)


def test_per_channel_over_the_last_axis_matches_torch():
    x = (RNG.standard_normal((500, 4)) * 10).astype(np.float32)
    scale = np.array([0.5, 0.125, 2.0, 1.0])
    zp = np.array([0, 3, -4, 10])
    ours = quantize(x, scale, zp)
    theirs, deq = torch_q(x, scale, zp, per_channel=True)
    assert np.array_equal(ours, theirs)
    assert np.array_equal(dequantize(ours, scale, zp), deq)


def test_rounding_modes_saturation_and_wrap():
    x = np.array([2.5, -2.5, 3.7, 1000.0, -1000.0, np.nan], np.float32)
    assert quantize(x, 1.0).tolist() == [2, -2, 4, 127, -128, 0]
    assert quantize(x, 1.0, rounding="rtz").tolist() == [2, -2, 3, 127, -128, 0]
    assert quantize(x, 1.0, saturate=False).tolist() == [2, -2, 4, -24, 24, 0]
    assert quantize(x, 1.0, 1, saturate=False).tolist() == [3, -1, 5, -23, 25, 1]


def test_fp8_quantization_takes_no_zero_point():
    x = np.array([1.0, 1000.0], np.float32)
    assert quantize(x, 2.0, dtype="fp8_e4m3").astype(np.float32).tolist() == [0.5, 448.0]
    with pytest.raises(ValueError, match="zero_point"):
        quantize(x, 1.0, 3, dtype="fp8_e4m3")


def test_requantize_is_v_acc_rounding():
    acc = np.array([[100, -100, 2**30, 7]], np.int32)
    scale = np.float32(0.05)
    # float32(acc) * float32(scale), rint, saturate
    want = [5, -5, 127, 0]  # 7 * 0.05 = 0.35000002 -> 0
    assert requantize(acc, scale).tolist() == [want]
    per = requantize(acc, np.array([0.05, 0.05, 1e-9, 1.0]), np.array([1, 1, 1, 1]))
    assert per.tolist() == [[6, -4, 2, 8]]
    with pytest.raises(TypeError, match="int32"):
        requantize(acc.astype(np.int64), 1.0)
    with pytest.raises(ValueError, match="per channel"):
        requantize(acc, np.ones(3))
