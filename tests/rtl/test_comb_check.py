"""tests/rtl/comb_check.py, the quicker combinational-loop check the Icarus tests export
with, against Amaranth's own: the same verdict and the same error, on a loop through
arithmetic cells, on a design without one, and on a small float core (fp8: its wide
shifts are the cells the quicker search skips)."""

from __future__ import annotations

import pytest

pytest.importorskip("amaranth")

from amaranth import Elaboratable, Module, Signal  # noqa: E402
from amaranth.back import verilog  # noqa: E402
from amaranth.hdl import _nir  # noqa: E402
from comb_check import _has_comb_cycle, fast_check  # noqa: E402

from chipforge.rtl import CoreConfig  # noqa: E402
from chipforge.rtl._core import MatrixCore  # noqa: E402

AMARANTH = _nir.Netlist.check_comb_cycles


class _Adders(Elaboratable):
    """``a = b + 1`` and ``b = f(a)``: a loop when ``loop``, else ``b`` comes from ``x``."""

    def __init__(self, loop: bool) -> None:
        self.loop, self.x, self.out = loop, Signal(8), Signal(8)

    def elaborate(self, platform):
        m, a, b = Module(), Signal(8), Signal(8)
        m.d.comb += [a.eq(b + 1), self.out.eq(a * 3 >> 1)]
        m.d.comb += b.eq((a[1:] ^ 3) if self.loop else (self.x + 5))
        return m


def _error(check, design) -> str:
    """The CombinationalCycle message of converting ``design`` under ``check``, or ''."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_nir.Netlist, "check_comb_cycles", check)
        try:
            verilog.convert(design, ports=[design.x, design.out])
        except _nir.CombinationalCycle as exc:
            return str(exc)
    return ""


def test_a_loop_through_adders_is_amaranth_s_error():
    want = _error(AMARANTH, _Adders(loop=True))
    assert want.startswith("Combinational cycle detected")
    assert _error(fast_check(AMARANTH), _Adders(loop=True)) == want


def test_no_loop_no_error_and_the_same_verilog():
    assert _error(fast_check(AMARANTH), _Adders(loop=False)) == ""
    plain = verilog.convert(_Adders(loop=False), ports=[])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_nir.Netlist, "check_comb_cycles", fast_check(AMARANTH))
        assert verilog.convert(_Adders(loop=False), ports=[]) == plain


def test_the_core_s_netlist_has_no_loop_for_either_check(monkeypatch):
    netlists = []
    monkeypatch.setattr(_nir.Netlist, "check_comb_cycles", lambda self: netlists.append(self))
    verilog.convert(MatrixCore(CoreConfig(2, 2, "fp8_e4m3", sram_words=32, acc_words=16)))
    assert len(netlists) == 1
    assert _has_comb_cycle(netlists[0]) is False
    AMARANTH(netlists[0])  # raises on a loop
