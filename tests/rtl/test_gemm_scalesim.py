"""Whole GEMMs through the RTL controller against SCALE-Sim v3's compute cycles (the golden
table in tests/perf/data/scalesim_golden.csv): RTL cycles = the timing simulator's =
SCALE-Sim's + 1 (SCALE-Sim reports the 0-based index of the last output write), + R more
for output-stationary (the last fold's drain, which SCALE-Sim does not count); results
exact."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytest.importorskip("amaranth")

from chipforge.rtl import run_gemm  # noqa: E402

GOLDEN = Path(__file__).parents[1] / "perf" / "data" / "scalesim_golden.csv"


def _cases(small: bool, dataflow: str = "ws") -> list[tuple[int, ...]]:
    """Rows of the golden table: small = arrays of <= 256 PEs and < 700 cycles; the rest
    below 2000 cycles (500 on 32 x 32; all of them are in docs/rtl.md)."""
    with GOLDEN.open() as f:
        rows = [tuple(int(r[k]) for k in ("rows", "cols", "m", "n", "k", "compute_cycles"))
                for r in csv.DictReader(f) if r["dataflow"] == dataflow]
    fits = [r for r in rows if r[0] <= 32 and r[1] <= 32
            and r[5] < (2000 if r[0] * r[1] <= 256 else 500)]
    is_small = [r[0] * r[1] <= 256 and r[5] < 700 for r in fits]
    return [r for r, s in zip(fits, is_small) if s == small]


def _check(rows: int, cols: int, m: int, n: int, k: int, golden: int,
           dataflow: str = "ws") -> None:
    run = run_gemm(rows, cols, m, n, k, dataflow=dataflow)
    assert run.exact
    assert run.scalesim_cycles == golden
    drain = rows if dataflow == "os" else 0
    assert run.rtl_cycles == run.model_cycles == golden + 1 + drain


@pytest.mark.parametrize("case", _cases(True), ids=lambda c: "x".join(map(str, c[:5])))
def test_gemm_matches_scalesim(case: tuple[int, ...]) -> None:
    _check(*case)


@pytest.mark.slow
@pytest.mark.parametrize("case", _cases(False), ids=lambda c: "x".join(map(str, c[:5])))
def test_gemm_matches_scalesim_large(case: tuple[int, ...]) -> None:
    _check(*case)


@pytest.mark.parametrize("case", _cases(True, "os"), ids=lambda c: "x".join(map(str, c[:5])))
def test_os_gemm_matches_scalesim_plus_the_last_drain(case: tuple[int, ...]) -> None:
    _check(*case, dataflow="os")


@pytest.mark.slow
@pytest.mark.parametrize("case", _cases(False, "os"), ids=lambda c: "x".join(map(str, c[:5])))
def test_os_gemm_matches_scalesim_plus_the_last_drain_large(case: tuple[int, ...]) -> None:
    _check(*case, dataflow="os")
