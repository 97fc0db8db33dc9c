"""``chipforge calibrate`` writes a profile fitted to the user's CSV; ``estimate``,
``compare`` take it with ``--calibration`` and say so; the estimate then equals the API's
with the profile's parameters (and differs from the default's)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chipforge.arch import load_chip
from chipforge.cli import app
from chipforge.ops import matmul, parse_op
from chipforge.perf import DEFAULT, estimate, load_calibration
from clitools import chipforge_exe

runner = CliRunner()
CHIP = load_chip("h100-sxm")
TRUTH = replace(DEFAULT, clock_fraction=0.7, dram_efficiency=0.6)
OP = "matmul m=4096 n=4096 k=4096 dtype=bf16"


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Timings the engine gives with planted parameters, plus one row faster than H100's
    bf16 peak allows (the implausible row the command must leave out and count)."""
    path = tmp_path_factory.mktemp("cli_cal") / "gemm.csv"
    sizes = (64, 256, 1024, 4096)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["dtype", "m", "n", "k", "latency_ms"])
        for m in (1, 16, *sizes):
            for n in sizes:
                for k in sizes:
                    seconds = estimate(matmul(m, n, k, "bf16"), CHIP, TRUTH).seconds
                    writer.writerow(["bf16", m, n, k, seconds * 1e3])
        peak_s = 2 * 8192**3 / CHIP.peak_flops("bf16")
        writer.writerow(["bf16", 8192, 8192, 8192, peak_s / 2 * 1e3])
    return path


@pytest.fixture(scope="module")
def profile(measured: Path) -> tuple[Path, dict]:
    out = measured.with_name("my-h100.yaml")
    result = runner.invoke(app, ["calibrate", "--chip", "h100-sxm", "--gemm", str(measured),
                                 "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_calibrate_writes_the_fitted_profile(profile: tuple[Path, dict]) -> None:
    path, doc = profile
    assert doc["efficiency"]["clock_fraction"] == pytest.approx(0.7, rel=0.02)
    assert doc["efficiency"]["dram_efficiency"] == pytest.approx(0.6, rel=0.02)
    assert doc["fitted_on"]["gemm"] == {"file": doc["fitted_on"]["gemm"]["file"],
                                        "rows": 97, "used": 96, "implausible": 1}
    assert doc["residuals"]["gemm"]["after"]["median_ape"] < 0.01
    assert load_calibration(path).clock_fraction == doc["efficiency"]["clock_fraction"]


def test_calibrate_prints_residuals_and_the_left_out_count(measured: Path,
                                                           tmp_path: Path) -> None:
    result = runner.invoke(app, ["calibrate", "--chip", "h100-sxm", "--gemm", str(measured),
                                 "-o", str(tmp_path / "p.yaml")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "median |err|" in result.stdout and "0-1 GFLOP" in result.stdout
    assert "1 of 97 rows left out as implausible" in result.output


def test_estimate_uses_the_profile(profile: tuple[Path, dict]) -> None:
    path, _ = profile
    result = runner.invoke(app, ["estimate", "--op", OP, "--chip", "h100-sxm",
                                 "--calibration", str(path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    eff = load_calibration(path)
    assert doc["seconds"] == pytest.approx(estimate(parse_op(OP), CHIP, eff).seconds, rel=1e-12)
    assert doc["seconds"] > 1.1 * estimate(parse_op(OP), CHIP).seconds  # the slower clock
    assert doc["calibration"]["profile"] == str(path)
    plain = runner.invoke(app, ["estimate", "--op", OP, "--chip", "h100-sxm", "--json"])
    assert json.loads(plain.stdout)["calibration"]["profile"] is None


def test_compare_states_the_profile(profile: tuple[Path, dict]) -> None:
    path, _ = profile
    result = runner.invoke(app, ["compare", "--chips", "h100-sxm", "--calibration",
                                 str(path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert str(path) in doc["assumptions"]["calibration"]


def test_malformed_profile_is_one_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("chipforge_calibration: 1\nchip: h100-sxm\nefficiency: {clock_fraction: 2}\n")
    proc = subprocess.run([chipforge_exe(), "estimate", "--op", OP, "--calibration", str(bad)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert f"{bad}: efficiency.clock_fraction is 2; expected a number in (0, 1]" in proc.stderr


def test_profile_folder_missing_is_refused_before_the_fit(measured: Path,
                                                          tmp_path: Path) -> None:
    from chipforge.perf import CalibrationError

    out = tmp_path / "absent" / "p.yaml"
    result = runner.invoke(app, ["calibrate", "--chip", "h100-sxm", "--gemm", str(measured),
                                 "-o", str(out)])
    assert isinstance(result.exception, CalibrationError)
    assert f"folder {out.parent} does not exist" in str(result.exception)
