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
        "build": [{"chip": "forge-i1", "nre_usd": 1.0e6, "lead_time_months": 0,
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
    # 200 req/s at the peak, 10 per chip: 20 chips, as 3 eight-GPU H20 servers (24 chips,
    # ~$24k each with host and network) or 5 four-chip forge-i1 boards (20 chips, ~$6k each)
    # plus the $1M NRE: buying is cheaper, and the buy-only fleet is the same fleet
    assert today["chips"] == {"h20": 24} and today["nre_paid"] == []
    assert today["buy_only"]["total_usd"] == pytest.approx(today["total_usd"])
    assert [(r["workload"], r["option"], r["chips"]) for r in today["rows"]] == \
        [("chat", "h20", 24)]
    assert today["rows"][0]["utilization"] == pytest.approx(200 / 240)
    excluded = {o["name"]: o for o in ban["options"]}
    assert not excluded["h20"]["allowed"] and "full-ban-nvidia" in excluded["h20"]["reason"]
    assert ban["chips"] == {"forge-i1": 20} and ban["nre_paid"] == ["forge-i1"]
    assert ban["buy_only_error"] == "no option to buy is allowed in this scenario"


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
