"""``chipforge chip show`` prints TPP, PD and the ECCN 3A090 tier (plus predicted area and
unit cost). Oracles: the published TPP values (notes README) and the rule's tiers."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from chipforge.cli import app

runner = CliRunner()


def _row(output: str, key: str) -> str:
    line = next(line for line in output.splitlines() if re.match(rf"│ {key}\s+│", line))
    return line.split("│")[2].strip()


@pytest.mark.parametrize(("name", "tpp", "pd", "tier"), [
    ("h100-sxm", 15_832, 15_832 / 814, "3A090.a"),  # 1,979 fp8 TOPS x 8 on 814 mm2
    ("h20", 2_368, 2_368 / 814, "not controlled"),  # PD ~2.9
])
def test_chip_show_prints_tpp_pd_and_tier(name, tpp, pd, tier):
    result = runner.invoke(app, ["chip", "show", name], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert float(_row(result.output, "TPP").replace(",", "")) == pytest.approx(tpp, rel=0.003)
    assert float(_row(result.output, "PD")) == pytest.approx(pd, abs=0.01)
    assert _row(result.output, "3A090 tier") == tier
    assert _row(result.output, "predicted die area").endswith("mm2")
    assert _row(result.output, "unit cost").startswith("$")
