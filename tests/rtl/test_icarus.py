"""The exported Verilog under an independent simulator: Icarus Verilog through cocotb 2.x
(tests/rtl/cocotb_mxu.py), bit-exact and cycle-exact against the functional simulator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("amaranth")
runner_mod = pytest.importorskip("cocotb_tools.runner",
                                 reason="cocotb 2.x is not installed (pip install "
                                 "'chipforge[rtl]')")

from amaranth.hdl import _nir  # noqa: E402
from comb_check import fast_check  # noqa: E402

from chipforge.rtl import CoreConfig, export_verilog  # noqa: E402

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _quick_comb_loop_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Amaranth's combinational-loop check, searched without re-walking sibling bits of
    arithmetic cells (tests/rtl/comb_check.py; same verdict, Amaranth's error): 60% of
    exporting the bf16 cores otherwise. The exported Verilog is the same."""
    monkeypatch.setattr(_nir.Netlist, "check_comb_cycles",
                        fast_check(_nir.Netlist.check_comb_cycles))


def _run_icarus(tmp_path: Path, cfg: CoreConfig, count: int, seed: int) -> None:
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog is not installed (apt-get install iverilog; Icarus 11+)")
    src = export_verilog(cfg, tmp_path)
    runner = runner_mod.get_runner("icarus")
    build = tmp_path / "sim_build"
    runner.build(sources=[src], hdl_toplevel="chipforge_mxu", build_dir=build, always=True,
                 timescale=("1ns", "1ps"))
    spec = {"rows": cfg.rows, "cols": cfg.cols, "dtype": cfg.dtype,
            "sram_words": cfg.sram_words, "acc_words": cfg.acc_words, "count": count,
            "seed": seed}
    xml = runner.test(test_module="cocotb_mxu", hdl_toplevel="chipforge_mxu",
                      test_dir=HERE, build_dir=build, extra_env={"MXU_CFG": json.dumps(spec)},
                      timescale=("1ns", "1ps"), results_xml=str(tmp_path / "results.xml"))
    total, failed = runner_mod.get_results(xml)
    assert total == 1 and failed == 0, f"cocotb: {failed} of {total} tests failed ({xml})"


def test_icarus_int8_8x8(tmp_path: Path) -> None:
    _run_icarus(tmp_path, CoreConfig(8, 8, "int8", sram_words=512, acc_words=256), 150, 7)


def test_icarus_bf16_4x4(tmp_path: Path) -> None:
    _run_icarus(tmp_path, CoreConfig(4, 4, "bf16", sram_words=256, acc_words=128), 60, 8)


@pytest.mark.slow
def test_icarus_bf16_8x8(tmp_path: Path) -> None:
    _run_icarus(tmp_path, CoreConfig(8, 8, "bf16", sram_words=512, acc_words=256), 60, 8)
