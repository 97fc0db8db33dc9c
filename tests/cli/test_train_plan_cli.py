"""``chipforge train-plan``: the JSON document, the tables, and one ``error:`` line for
each user error."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from chipforge.cli import app, main
from chipforge.cluster import chips_for_budget
from chipforge.legal import OUTCOMES

runner = CliRunner()
SMALL = ["train-plan", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--count", "16",
         "--tokens", "1e11", "--seq-len", "2048", "--batch-tokens", "131072", "--top", "3"]
PLAN_KEYS = {"plan", "parallelism", "chips", "chips_used", "fits", "step_time_s", "tokens_per_s",
             "global_batch_tokens", "mfu", "hfu", "memory_bytes", "memory",
             "memory_capacity_bytes", "step_breakdown_s", "goodput", "mtbf_s",
             "checkpoint_interval_s", "checkpoint_write_s", "restart_s", "days",
             "chip_hours", "energy_mwh", "cost_usd", "cost_parts_usd", "mw"}


@pytest.fixture(scope="module")
def doc() -> dict:
    result = runner.invoke(app, [*SMALL, "--compare", "h20", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_has_the_plans_with_every_figure(doc):
    assert (doc["model"], doc["chip"], doc["chips"]) == ("llama-3.1-8b", "h100-sxm", 16)
    assert 1 <= len(doc["plans"]) <= 3
    for plan in doc["plans"]:
        assert set(plan) == PLAN_KEYS
        assert plan["fits"] and plan["memory_bytes"] <= plan["memory_capacity_bytes"]
        assert plan["chips"] == 16 and 0 < plan["goodput"] <= 1
    days = [p["days"] for p in doc["plans"]]
    assert days == sorted(days)
    assert doc["evaluated"] > len(doc["plans"])


def test_json_compares_a_fleet_bought_with_the_same_capital(doc):
    (row,) = doc["comparison"]
    assert row["chip"] == "h20" and row["verdict"] in OUTCOMES and row["error"] is None
    assert row["chips"] == chips_for_budget("h20", budget_usd=doc["capital_usd"])
    assert set(row["plan"]) == PLAN_KEYS
    assert "same capital" in doc["comparison_basis"]


def test_the_table_shows_the_plans_memory_and_comparison():
    result = runner.invoke(app, [*SMALL, "--compare", "h20"])
    assert result.exit_code == 0, result.output
    for text in ("best plans", "memory per chip of the best plan", "total / usable",
                 "on GPU fleets", "h20", "cost: capital"):
        assert text in result.stdout


def _error_line(capsys, monkeypatch, *args: str) -> str:
    """What the console script prints: main() turns a ChipforgeError into one line."""
    monkeypatch.setattr(sys, "argv", ["chipforge", *args])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    return captured.err


def test_nothing_fits_is_one_error_line(capsys, monkeypatch):
    err = _error_line(capsys, monkeypatch, "train-plan", "--model", "megatron-gpt-18b",
                      "--chip", "h100-sxm", "--count", "1", "--tokens", "1e12",
                      "--seq-len", "2048", "--compare", "")
    assert err.startswith("error: model 'megatron-gpt-18b' on 1 x h100-sxm: no plan fits in "
                          "memory; the smallest need is ")


@pytest.mark.parametrize(("extra", "pinned"), [
    (["--count", "8", "--budget-usd", "1e6"],
     "error: count=8 with a budget; expected a chip count or a budget, not both\n"),
    (["--count", "8", "--workers", "0"], "error: --workers: got 0; expected at least 1\n"),
    (["--count", "-3"], "error: count: -3; expected a positive number of chips\n"),
    (["--budget-mw", "0"], "error: budget_mw: 0.0; expected a positive number\n"),
    (["--count", "8", "--compare", "h20,h999"],
     "error: --compare: unknown chip 'h999'; expected a spec file path or one of: "),
])
def test_bad_options_are_one_error_line(capsys, monkeypatch, extra, pinned):
    err = _error_line(capsys, monkeypatch, "train-plan", "--model", "llama-3.1-8b",
                      "--chip", "h100-sxm", "--tokens", "1e12", *extra)
    assert err.startswith(pinned) and (err == pinned or "one of: " in pinned)


def test_an_unknown_chip_is_one_error_line(capsys, monkeypatch):
    err = _error_line(capsys, monkeypatch, "train-plan", "--model", "llama-3.1-8b",
                      "--chip", "h300", "--count", "8", "--tokens", "1e12")
    assert err.startswith("error: chip: unknown chip 'h300'")
