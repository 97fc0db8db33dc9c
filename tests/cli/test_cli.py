"""The ``chipforge`` command line: in-process through Typer's CliRunner for the happy paths,
and through the installed console script (``main``) for exit codes and stderr."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import yaml
from typer.testing import CliRunner

from chipforge.arch._loader import catalog_path
from chipforge.cli import app
from chipforge.workloads import workload_names
from clitools import chipforge_exe

CATALOG = ["a100-sxm", "ascend-910b", "ascend-910c", "b200", "b300", "forge-i1", "forge-t1",
           "gb200", "h100-sxm", "h20", "h200-sxm", "h800-sxm", "l40s", "rtx-pro-6000-server",
           "tpu-v5e"]
BOUNDS = {"compute", "memory", "overhead", "network"}
FORM = "'KIND key=value ...', e.g. 'matmul m=4096 n=4096 k=4096 dtype=bf16'"

runner = CliRunner()



def _run(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    # rich reads the width from COLUMNS when output is not a terminal
    return subprocess.run([chipforge_exe(), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": str(columns)})


# ---- chips / chip show ------------------------------------------------------------------


def test_chips_lists_every_catalog_chip():
    proc = _run("chips")
    assert proc.returncode == 0, proc.stderr
    first_cells = [line.split("│")[1].strip() for line in proc.stdout.splitlines()
                   if line.startswith("│")]
    assert [c for c in first_cells if c] == CATALOG


def test_chips_shows_datasheet_peaks():
    # H100 SXM datasheet: 989 TF dense bf16, 3.35 TB/s, 700 W
    proc = _run("chips")
    row = next(line for line in proc.stdout.splitlines() if "│ h100-sxm" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[4] == "989 TFLOP/s"
    assert cells[8] == "3.35 TB/s"
    assert cells[9] == "700 W"


def test_chips_names_survive_80_columns():
    proc = _run("chips", columns=80)
    assert proc.returncode == 0
    for name in CATALOG:
        assert name in proc.stdout


def test_chip_show_prints_sources():
    raw = yaml.safe_load(catalog_path("h100-sxm").read_text())
    proc = _run("chip", "show", "h100-sxm", columns=400)
    assert proc.returncode == 0, proc.stderr
    tdp_row = next(line for line in proc.stdout.splitlines() if line.startswith("│ tdp "))
    assert "700 W" in tdp_row  # H100 SXM datasheet TDP
    assert f"source: {raw['tdp']['source']}" in tdp_row
    assert f"source: {raw['memory']['bandwidth']['source']}" in proc.stdout


# ---- estimate -----------------------------------------------------------------------------


def test_estimate_json():
    result = runner.invoke(app, ["estimate", "--chip", "h100-sxm", "--op",
                                 "matmul m=4096 n=4096 k=4096 dtype=bf16", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"seconds", "flops", "hbm_bytes", "energy_j", "utilization", "bound"} <= set(data)
    assert data["chip"] == "h100-sxm"
    assert data["flops"] == 2 * 4096**3 == 137_438_953_472
    assert 0 < data["utilization"] <= 1
    assert data["bound"] in BOUNDS
    # physical lower bounds: the datasheet's 989 TF dense bf16 and 3.35 TB/s;
    # DRAM traffic at least A, B and C once: 3 * 4096^2 * 2 bytes
    assert data["seconds"] >= 2 * 4096**3 / 989e12
    assert data["hbm_bytes"] >= 3 * 4096**2 * 2
    assert data["seconds"] >= data["hbm_bytes"] / 3.35e12
    assert data["energy_j"] > 0


def test_estimate_accepts_a_spec_path(tmp_path):
    path = tmp_path / "mine.yaml"
    shutil.copy(catalog_path("h100-sxm"), path)
    args = ["estimate", "--op", "matmul m=1024 n=1024 k=1024", "--json"]
    by_path = runner.invoke(app, [*args, "--chip", str(path)])
    by_name = runner.invoke(app, [*args, "--chip", "h100-sxm"])
    assert by_path.exit_code == by_name.exit_code == 0
    assert json.loads(by_path.stdout) == json.loads(by_name.stdout)


def test_malformed_op_is_one_error_line():
    proc = _run("estimate", "--chip", "h100-sxm", "--op", "matmul m4096")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr == (
        f"error: malformed argument 'm4096' in 'matmul m4096'; expected {FORM}\n")


def test_unknown_chip_is_one_error_line():
    proc = _run("estimate", "--chip", "h300", "--op", "matmul")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: unknown chip 'h300'; expected a spec file path or one of: "
        f"{', '.join(CATALOG)}\n")


def test_usage_error_exits_2_without_traceback():
    proc = _run("estimate")
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2
    assert "Missing option '--op'." in proc.stderr


# ---- compare ------------------------------------------------------------------------------


def test_compare_json_has_every_workload_and_chip():
    chips = ["h100-sxm", "forge-i1"]
    result = runner.invoke(app, ["compare", "--json", "--chips", ",".join(chips)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["chips"] == chips
    assert [row["workload"] for row in data["rows"]] == list(workload_names())
    assert len(data["rows"]) == 8
    for row in data["rows"]:
        assert [cell["chip"] for cell in row["cells"]] == chips
        for cell in row["cells"]:
            assert "error" not in cell, (row["workload"], cell)
            if not cell["fits"]:  # memory-checked: no number, the chips it needs instead
                assert cell["needs_chips"] >= 2 and "seconds" not in cell, cell
                continue
            assert cell["seconds"] > 0
            assert 0 < cell["utilization"] <= 1
            assert cell["bound"] in BOUNDS
            assert cell["throughput"] > 0


def test_chips_shows_the_predicted_die_where_the_spec_states_none():
    from chipforge import load_chip
    from chipforge.cost import die_area

    proc = _run("chips", columns=200)
    row = next(line for line in proc.stdout.splitlines() if "│ forge-i1" in line)
    assert row.split("│")[-2].strip() == f"~{die_area(load_chip('forge-i1')).total_mm2:.0f} mm2"
    h100 = next(line for line in proc.stdout.splitlines() if "│ h100-sxm" in line)
    assert h100.split("│")[-2].strip() == "814 mm2"  # stated in the spec, not predicted
