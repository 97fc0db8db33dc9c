"""Random MM_LW / MM_MUL / MM_OS on the RTL (Amaranth simulator) against the functional simulator:
0 mismatched accumulator words and RTL cycles equal to chipforge.isa.cycles for every
instruction, across array shapes and every implemented dtype (>= 1000 instructions in
the default run, more under -m slow)."""

from __future__ import annotations

import pytest

pytest.importorskip("amaranth")

from chipforge.rtl import CoreConfig, run_verify  # noqa: E402
from chipforge.rtl import _verify as verify_mod  # noqa: E402
from chipforge.rtl._golden import Golden  # noqa: E402


def _check(rows: int, cols: int, dtype: str, count: int, seed: int) -> None:
    rep = run_verify(CoreConfig(rows, cols, dtype), count, seed)
    assert len(rep.results) == count
    bad = [r for r in rep.results if r.mismatches or not r.cycles_ok]
    assert not bad, f"{len(bad)} bad, first: {bad[0]}"
    assert all(r.rtl_cycles == r.model_cycles for r in rep.results)
    ops = {r.text.split()[0] for r in rep.results}
    assert ops == {"MM_LW", "MM_MUL", "MM_OS"}
    assert any("ACCUMULATE" in r.text for r in rep.results)


@pytest.mark.parametrize("rows,cols,dtype,count", [
    (4, 4, "int8", 1000),
    (8, 8, "int8", 300),
    (3, 5, "int8", 150),
    (2, 2, "int8", 100),
    (4, 4, "bf16", 150),
    (4, 4, "fp8_e4m3", 150),
    (4, 4, "fp8_e5m2", 150),
    (2, 6, "fp8_e4m3", 60),
])
def test_random_instructions(rows: int, cols: int, dtype: str, count: int) -> None:
    _check(rows, cols, dtype, count, seed=rows * 100 + cols)


@pytest.mark.slow
@pytest.mark.parametrize("rows,cols,dtype,count", [
    (16, 16, "int8", 300),
    (8, 8, "bf16", 80),
    (8, 8, "fp8_e4m3", 80),
    (8, 8, "fp8_e5m2", 80),
    (5, 3, "bf16", 120),
])
def test_random_instructions_large(rows: int, cols: int, dtype: str, count: int) -> None:
    _check(rows, cols, dtype, count, seed=rows * 100 + cols + 1)


def test_a_wrong_result_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: a golden model that skips every MM_MUL makes results differ."""
    real = Golden.run
    monkeypatch.setattr(Golden, "run", lambda self, ins: real(self, ins)
                        if ins.op.name == "MM_LW" else None)
    rep = run_verify(CoreConfig(4, 4), 30, 1)
    assert rep.mismatches > 0 and not rep.ok


def test_a_wrong_cycle_count_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: a model cost one cycle longer than the RTL's fails every check."""
    real = verify_mod.cycles
    monkeypatch.setattr(verify_mod, "cycles", lambda ins, t: real(ins, t) + 1)
    rep = run_verify(CoreConfig(4, 4), 10, 1)
    assert rep.cycle_errors == 10 and not rep.ok


def test_vcd_is_written(tmp_path) -> None:
    path = tmp_path / "w.vcd"
    assert run_verify(CoreConfig(2, 2), 5, 0, vcd=path).ok
    text = path.read_text()
    assert "$enddefinitions" in text and "accepted" in text


def test_a_wrong_mm_os_result_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: a golden model that skips every MM_OS makes results differ."""
    real = Golden.run
    monkeypatch.setattr(Golden, "run", lambda self, ins: real(self, ins)
                        if ins.op.name != "MM_OS" else None)
    rep = run_verify(CoreConfig(4, 4), 30, 1)
    assert rep.mismatches > 0 and not rep.ok


def test_a_missing_drain_latency_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: a model without MM_OS's R-cycle drain fails exactly the MM_OSs
    that write (m > 0), and nothing else."""
    monkeypatch.setattr(verify_mod, "latency", lambda ins, t: 0)
    rep = run_verify(CoreConfig(4, 4), 40, 1)
    writing_os = [r for r in rep.results
                  if r.text.startswith("MM_OS") and " m=0" not in r.text]
    assert writing_os and rep.cycle_errors == len(writing_os)
    assert all(not r.cycles_ok for r in writing_os)
