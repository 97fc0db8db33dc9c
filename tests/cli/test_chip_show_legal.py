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
    # our design, fabricated at TSMC (N5: FinFET, <= 16 nm) for a china-hq designer:
    # TPP ~2,386 < 4800 and PD ~2.9 < 3.2, so neither 3A090.a nor .b; 1 GiB of global
    # SRAM alone is 2^30 x 8 bits x 6 transistors = 51.5e9 >= 30e9 (foundry rule, 2026),
    # so the presumption binds: presumed controlled; its HBM3e (4.0 TB/s on 4 stacks of
    # 11 x 11 mm: 1,000 / 121 = 8.3 GB/s/mm2 > 2) meets 3A090.c, licence required, the
    # less severe outcome
    ("forge-i1", "presumed controlled", ["3a090c-2024", "foundry-dd-2025"]),
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
