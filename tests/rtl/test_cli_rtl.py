"""``chipforge rtl export | verify | synth`` through the Typer app in chipforge.cli._rtl
(the lead wires it into ``chipforge``); user errors are one-line ChipforgeErrors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("amaranth")

from chipforge.cli._rtl import rtl_app  # noqa: E402
from chipforge.errors import ChipforgeError  # noqa: E402

runner = CliRunner()


def _error(*args: str) -> str:
    res = runner.invoke(rtl_app, list(args))
    assert isinstance(res.exception, ChipforgeError), (res.exception, res.output)
    msg = str(res.exception)
    assert "\n" not in msg
    return msg


def test_verify_prints_cycles_per_instruction(tmp_path: Path) -> None:
    vcd = tmp_path / "waves" / "v.vcd"
    res = runner.invoke(rtl_app, ["verify", "--rows", "4", "--cols", "4", "--dtype", "int8",
                                  "--count", "20", "--seed", "3", "--vcd", str(vcd)])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "model" in ln]
    assert len(lines) == 20 and all(" ok " in ln for ln in lines)
    assert "0 mismatched words, 0 cycle differences" in res.output
    assert vcd.stat().st_size > 0


def test_verify_exits_1_on_a_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    from chipforge.rtl import _verify

    real = _verify.cycles
    monkeypatch.setattr(_verify, "cycles", lambda ins, t: real(ins, t) + 1)
    res = runner.invoke(rtl_app, ["verify", "--rows", "2", "--cols", "2", "--count", "3",
                                  "--quiet"])
    assert res.exit_code == 1
    assert "MISMATCH" in res.output and "3 cycle differences" in res.output


def test_export_writes_verilog(tmp_path: Path) -> None:
    res = runner.invoke(rtl_app, ["export", "--chip", "forge-i1", "--out", str(tmp_path),
                                  "--rows", "4", "--cols", "4"])
    assert res.exit_code == 0, res.output
    v = tmp_path / "chipforge_mxu_4x4_int8.v"
    assert "module chipforge_mxu(" in v.read_text()
    assert '"instr_fields"' in v.with_suffix(".json").read_text()


def test_user_errors_are_one_line() -> None:
    assert "--rows must be an integer in 2..256, got 1" in _error("verify", "--rows", "1")
    assert "--cols must be an integer in 2..256, got 999" in _error("export", "--cols", "999")
    assert "unsupported RTL dtype 'fp32'" in _error("verify", "--dtype", "fp32")
    assert "unsupported RTL dtype 'fp16'" in _error("synth", "--dtype", "fp16")
    assert "unknown chip 'nope'" in _error("export", "--chip", "nope")
    assert "no systolic matrix unit" in _error("export", "--chip", "h100-sxm")
    assert "no gate-area figure for process node 'N2'" in _error("synth", "--node", "N2")
    assert "--sizes must be integers" in _error("synth", "--sizes", "4,x")
    assert "--count must be >= 1" in _error("verify", "--count", "0")
