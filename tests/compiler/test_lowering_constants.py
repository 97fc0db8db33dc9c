"""Constants become DRAM bytes exactly as numpy casts them, in C order, whatever their
layout (a folded weight transpose is a large Fortran-ordered view)."""

from __future__ import annotations

import numpy as np
import pytest

from chipforge.compiler.lower._lowering import c_bytes
from chipforge.numerics import NP_DTYPE


@pytest.mark.parametrize("dtype", ["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("shape", [(1100, 1000), (2048, 512)])  # >= 2**20: the banded cast
def test_a_transposed_constant_casts_to_numpys_bytes(dtype: str, shape: tuple) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 1e3
    x[0, :5] = [np.inf, -np.inf, np.nan, 0.0, -0.0]
    want = np.ascontiguousarray(x.T.astype(NP_DTYPE[dtype])).tobytes()
    assert c_bytes(x.T, NP_DTYPE[dtype]) == want
    assert c_bytes(x, NP_DTYPE[dtype]) == np.ascontiguousarray(x.astype(NP_DTYPE[dtype])).tobytes()
