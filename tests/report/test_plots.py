"""Roofline roofs: one per distinct peak, so equal peaks cannot hide each other."""

import pytest

from chipforge.arch import load_chip
from chipforge.report._plots import roof_groups


def test_h100_fp8_and_int8_share_one_roof_and_one_label():
    # NVIDIA H100 SXM datasheet (dense): bf16 = fp16 989 TFLOP/s; fp8 = int8 1,979
    groups = roof_groups(load_chip("h100-sxm"))
    assert [sorted(d) for d in groups.values()] == [["fp8_e4m3", "int8"], ["bf16", "fp16"]]
    peaks = list(groups)
    assert peaks[0] == pytest.approx(1.979e15, rel=0.01)
    assert peaks[1] == pytest.approx(0.989e15, rel=0.01)


def test_every_supported_roof_dtype_is_drawn_once():
    chip = load_chip("forge-i1")
    groups = roof_groups(chip)
    drawn = [d for dtypes in groups.values() for d in dtypes]
    assert len(drawn) == len(set(drawn))
    for dtype in drawn:
        assert chip.peak_flops(dtype) in groups
    assert list(groups) == sorted(groups, reverse=True)
