"""``chipforge chip show`` prints the export verdict under the default scenario (tsmc-2026:
2026-06-01, a china-hq buyer, fabrication at TSMC, no approved-designer exception).

Oracles: the verdicts are derived by hand from the rules table of docs/legal.md (the
derivation is in each case's comment); the JSON is compared with chipforge.legal's own
``check_scenario`` for the wiring.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

import chipforge.cost
from chipforge.arch import load_chip
from chipforge.cli import app
from chipforge.errors import ChipforgeError
from chipforge.legal import DEFAULT_SCENARIO, NOT_LEGAL_ADVICE, check_scenario

runner = CliRunner()
WIDE = {"COLUMNS": "260"}


def _legal_row(output: str) -> list[str]:
    line = next(line for line in output.splitlines()
                if re.match(r"│ legal \(tsmc-2026\)\s+│", line))
    return [cell.strip() for cell in line.split("│")[2:4]]


@pytest.mark.parametrize(("name", "verdict", "binding"), [
    # our design, re-derived under tsmc-2026 and fabricated at TSMC (N4: FinFET, <= 16 nm)
    # for a china-hq designer: TPP 1,573 < 1600 is in no 3A090 tier; GDDR7 is 125 GB/s
    # over a 12 x 14 mm package = 0.74 GB/s/mm2 < 2 (no 3A090.c); its 16 MiB + 32 x 4 MiB
    # of SRAM is 144 MiB x 8 x 6 = 7.2e9 transistors in bitcells, and the model's 18.8e9
    # whole-chip count is under the foundry rule's 30e9: no rule binds
    ("forge-i1", "uncontrolled", []),
    # an NVIDIA purchase: TPP 2,368 < 2,400 with PD ~2.9 < 3.2 is outside 3A090.a/.b; the
    # April 2025 H20 letter ended on 2025-07-14 and the July 2025 licensing event
    # (licences granted) names the H20 from then on: licence required
    ("h20", "licence required", ["nvidia-h20-2025-07"]),
    # Huawei is domestic to a china-hq buyer: no export, no rule binds, although its TPP
    # puts it in 3A090.a
    ("ascend-910b", "uncontrolled", []),
])
def test_chip_show_prints_the_verdict_and_the_binding_rules(name, verdict, binding):
    result = runner.invoke(app, ["chip", "show", name], env=WIDE)
    assert result.exit_code == 0, result.output
    value, how = _legal_row(result.output)
    assert value == verdict
    rules = f"binding: {', '.join(binding)}" if binding else "no rule binds"
    assert how == f"{rules}; details: chipforge legal {name}"


@pytest.mark.parametrize("name", ["forge-i1", "h20", "ascend-910b"])
def test_chip_show_json_has_check_scenarios_verdict(name):
    result = runner.invoke(app, ["chip", "show", name, "--json"])
    assert result.exit_code == 0, result.output
    report = check_scenario(load_chip(name), DEFAULT_SCENARIO)
    assert json.loads(result.output)["legal"] == {
        "scenario": "tsmc-2026", "verdict": report.verdict,
        "binding": [c.rule_id for c in report.binding], "notice": NOT_LEGAL_ADVICE}


def test_a_chip_the_check_cannot_measure_shows_the_error_in_its_row(monkeypatch):
    # a memory whose bandwidth density chipforge.cost cannot give: 3A090.c needs it
    def no_density(chip):
        raise ChipforgeError("no density")

    monkeypatch.setattr(chipforge.cost, "memory_bandwidth_density", no_density)
    message = ("rule 3a090c-2024 (ECCN 3A090.c (89 FR 96790)) tests "
               "memory_bw_density_gb_s_mm2, but chip 'forge-i1' has none: expected a memory "
               "bandwidth density in GB/s per mm2 of package or stack "
               "(chipforge.cost.memory_bandwidth_density)")
    result = runner.invoke(app, ["chip", "show", "forge-i1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["legal"] == {
        "scenario": "tsmc-2026", "verdict": None, "binding": [], "error": message,
        "notice": NOT_LEGAL_ADVICE}
    result = runner.invoke(app, ["chip", "show", "forge-i1"], env={"COLUMNS": "500"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert _legal_row(result.output) == ["-", f"error: {message}"]
