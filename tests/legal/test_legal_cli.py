"""``chipforge legal``: the table, the verdict, the not-legal-advice line, --json, and one
``error:`` line with exit 2 for bad input. Oracle: the hand-derived verdicts of
test_legal_verdicts.py (the CLI uses chipforge.cost's measures, on the same side of every
threshold for these chips)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from legalkit import pre_legal_spec
from typer.testing import CliRunner

from chipforge.cli import app
from clitools import chipforge_exe

runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, ["legal", *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_table_lists_every_rule_with_its_citation_and_the_verdict(tmp_path):
    spec = pre_legal_spec("forge-i1", tmp_path)
    out = _invoke(spec, "--as-of", "2026-06-01", "--buyer", "china-hq", "--fab", "tsmc")
    for rule in ("3a090a-2023", "3a090b-2023", "3a090c-2024", "foundry-dd-2025"):
        assert rule in out
    assert "https://www.govinfo.gov/content/pkg/FR-2025-01-16/html/2025-00711.htm" in out
    assert "transistors >= 30e9" in out
    assert "verdict: presumed controlled" in out
    assert "Not legal advice" in out


def test_approved_designer_flag(tmp_path):
    out = _invoke(pre_legal_spec("forge-i1", tmp_path), "--approved-designer")
    assert "verdict: licence required" in out
    # the catalog forge-i1, re-derived under tsmc-2026, is legal to make there
    assert "verdict: uncontrolled" in _invoke("forge-i1")


@pytest.mark.parametrize(("name", "verdict"), [
    ("tsmc-2026", "presumed controlled"), ("tsmc-2026-approved", "licence required"),
    ("domestic-2026", "uncontrolled"), ("full-ban", "uncontrolled")])
def test_scenarios(name, verdict, tmp_path):
    out = _invoke(pre_legal_spec("forge-t1", tmp_path), "--scenario", name)
    assert f"verdict: {verdict}" in out


def test_json_returns_the_same_report():
    doc = json.loads(_invoke("h20", "--as-of", "2025-05-01", "--json"))
    assert doc["verdict"] == "licence required"
    assert doc["path"] == "purchase"
    binding = [c["rule_id"] for c in doc["checks"] if c["binds"]]
    assert binding == ["nvidia-h20-2025-04"]
    tpp = next(c for c in doc["checks"] if c["rule_id"] == "3a090a-2023")
    assert tpp["value"] == pytest.approx(2_368, rel=0.003)  # 296 TOPS int8 x 8 (datasheet)
    assert tpp["threshold"] == "tpp >= 4800"
    assert doc["notice"].startswith("Not legal advice")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chipforge_exe(), "legal", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize(("args", "message"), [
    (("h20", "--buyer", "mars"),
     "error: unknown buyer 'mars': expected one of china-hq, row, us "
     "(chipforge/legal/data/context.yaml)\n"),
    (("h20", "--as-of", "June 2026"),
     "error: as_of 'June 2026' is not a date: expected YYYY-MM-DD\n"),
    (("h20", "--scenario", "full-ban", "--fab", "smic"),
     "error: --scenario full-ban fixes the date, buyer, fab and exception; drop --fab\n"),
])
def test_errors_exit_2_with_one_line(args, message):
    proc = _run(*args)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", message)


def test_a_scenario_also_says_what_its_fab_cannot_supply():
    # forge-i1 is an N4 design; SMIC runs only its N+2 node among the spec's nodes
    out = _invoke("forge-i1", "--scenario", "domestic-2026")
    assert "verdict: uncontrolled" in out
    assert "supply (domestic-2026): SMIC does not run N4: it offers SMIC-N+2" in out
    doc = json.loads(_invoke("forge-i1", "--scenario", "domestic-2026", "--json"))
    assert doc["supply_problems"] == ["SMIC does not run N4: it offers SMIC-N+2"]
