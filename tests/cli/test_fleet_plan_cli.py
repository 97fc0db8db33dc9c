"""``chipforge fleet-plan``: the table and JSON per scenario (planners replaced by fixed
coefficients, so the figures are hand-checkable), the shipped default announced on stderr,
and user errors as one ``error:`` line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import chipforge.cluster
from chipforge.cli import app
from chipforge.cluster import Coefficient
from chipforge.errors import ChipforgeError

runner = CliRunner()

DEMAND = {
    "name": "tiny",
    "options": {
        "buy": [{"chip": "h20", "price_per_chip_usd": 10000, "source": "assumption: test"}],
        "build": [{"chip": "forge-i1", "nre_usd": 1.0e5, "lead_time_months": 0,
                   "source": "assumption: test"}],
    },
    "serving": [{"name": "chat", "model": "llama-3.1-8b", "mean_rate_per_s": 100,
                 "peak_to_mean": 2.0, "input_len": 100, "output_len": 10,
                 "source": "assumption: test"}],
}


class FixedRates:
    """10 req/s per chip on every option, for every serving workload."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, work, option, hint) -> Coefficient:
        return Coefficient(10.0, 1)


@pytest.fixture
def demand_file(tmp_path: Path) -> Path:
    path = tmp_path / "demand.yaml"
    path.write_text(yaml.safe_dump(DEMAND))
    return path


def test_json_plan_per_scenario(demand_file, monkeypatch):
    monkeypatch.setattr(chipforge.cluster, "PlannerCoefficients", FixedRates)
    result = runner.invoke(app, ["fleet-plan", str(demand_file), "--scenario", "tsmc-2026",
                                 "--scenario", "full-ban", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    today, ban = doc["plans"]
    # 200 req/s at the peak, 10 per chip: 20 chips, as 5 four-chip forge-i1 boards (~$5.9k a
    # chip with host and network, no amortized NRE) plus the $100k NRE, ~$0.22M, or 3
    # eight-GPU H20 servers (24 chips at ~$23.8k), ~$0.57M: building wins
    assert today["chips"] == {"forge-i1": 20} and today["nre_paid"] == ["forge-i1"]
    assert today["buy_only"]["chips"] == {"h20": 24}
    assert today["total_usd"] < today["buy_only"]["total_usd"]
    assert [(r["workload"], r["option"], r["chips"]) for r in today["rows"]] == \
        [("chat", "forge-i1", 20)]
    assert today["rows"][0]["utilization"] == pytest.approx(1.0)
    assert today["buy_only"]["rows"][0]["utilization"] == pytest.approx(200 / 240)
    # full ban: no NVIDIA purchase, and SMIC cannot make the N4 forge-i1 of the catalog
    assert ban["infeasible"].startswith("scenario 'full-ban': no option is allowed (h20: "
                                        "prohibited")
    assert "forge-i1: cannot be made under full-ban: SMIC does not run N4" in ban["infeasible"]


def test_table_and_default_demand_notice(monkeypatch):
    monkeypatch.setattr(chipforge.cluster, "PlannerCoefficients", FixedRates)
    result = runner.invoke(app, ["fleet-plan", "--scenario", "tsmc-2026"])
    assert result.exit_code == 0, result.output
    assert "using the shipped default" in result.stderr
    assert "scenario tsmc-2026" in result.stdout
    assert "option h100-sxm (buy): excluded: licence required under a presumption of denial" \
        in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--power-cap-mw", "-1"], "--power-cap-mw: got -1.0; expected a positive number of MW"),
    (["--scenario", "nowhere"], "unknown scenario 'nowhere'"),
    (["--workers", "0"], "--workers: got 0; expected at least 1"),
])
def test_bad_options_are_one_error(demand_file, args, message):
    result = runner.invoke(app, ["fleet-plan", str(demand_file), *args])
    assert isinstance(result.exception, ChipforgeError)
    assert message in str(result.exception)


def test_bad_demand_file_is_one_error(tmp_path):
    """main() prints a ChipforgeError as one ``error:`` line (tests/cli/test_cli.py)."""
    bad = tmp_path / "d.yaml"
    bad.write_text(yaml.safe_dump({**DEMAND, "serving": [{**DEMAND["serving"][0],
                                                          "input_len": 0}]}))
    result = runner.invoke(app, ["fleet-plan", str(bad)])
    assert isinstance(result.exception, ChipforgeError) and result.stdout == ""
    assert str(result.exception) == (f"{bad}: serving[0].input_len: Input should be greater "
                                     "than 0 (got 0)")
    result = runner.invoke(app, ["fleet-plan", str(tmp_path / "none.yaml")])
    assert str(result.exception).startswith(f"{tmp_path / 'none.yaml'}: cannot read demand "
                                            "file")
