"""``chipforge serve-plan``: the JSON document's schema and arithmetic, the table, the
equal-budget comparison, a resumable store, and one-line errors."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from chipforge.cli import app

runner = CliRunner()
SMALL = ["--model", "llama-3.1-8b", "--chip", "h100-sxm", "--rate", "40", "--input-len",
         "256", "--output-len", "32", "--requests", "40", "--tp", "1", "--max-seqs", "16",
         "--ratios", "", "--slo-ttft", "0.2", "--slo-tpot", "0.02"]
DEPLOYMENT_KEYS = {"deployment", "tp", "max_seqs", "max_batch_tokens", "prefill_replicas",
                   "decode_replicas", "chips_per_unit", "feasible", "max_rate_per_unit",
                   "max_rate_per_chip", "ttft_s", "tpot_s", "tokens_per_s_per_chip",
                   "usd_per_m_tokens"}


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    result = runner.invoke(app, ["serve-plan", *SMALL, "--compare", "h20", "--store",
                                 str(store), "--json"])
    assert result.exit_code == 0, result.output
    assert (store / "serve_plan.jsonl").is_file()
    return json.loads(result.stdout)


def test_json_schema(doc):
    assert doc["model"] == "llama-3.1-8b" and doc["chip"] == "h100-sxm"
    assert doc["slo"] == {"ttft_s": 0.2, "tpot_s": 0.02, "percentile": 90}
    assert set(doc["best"]) == DEPLOYMENT_KEYS
    assert set(doc["best"]["ttft_s"]) == {"p50", "slo_percentile", "p99"}
    assert doc["searched"] == 1 and len(doc["deployments"]) == 1
    assert doc["best"]["feasible"] and doc["best"]["ttft_s"]["slo_percentile"] <= 0.2
    assert doc["units"] == math.ceil(40 / doc["best"]["max_rate_per_unit"])
    assert doc["chips"] == doc["units"] * doc["best"]["chips_per_unit"]
    assert doc["fleet_capex_usd"] == pytest.approx(doc["chips"] * doc["price_per_chip_usd"])
    assert doc["tokens_per_s_per_chip"] == pytest.approx(
        doc["best"]["max_rate_per_chip"] * 32)


def test_equal_budget_comparison(doc):
    (row,) = doc["comparison"]
    assert row["chip"] == "h20" and row["error"] is None
    assert row["verdict"] is not None
    # whole deployment units of H20 bought with the plan's capital
    assert row["chips"] * 1.0 <= doc["fleet_capex_usd"] / 1.0
    assert row["rate_served"] > 0 and row["chips_for_rate"] >= 1


def test_table_output_names_the_fleet():
    result = runner.invoke(app, ["serve-plan", *SMALL, "--compare", ""])
    assert result.exit_code == 0, result.output
    assert "best deployments" in result.stdout
    assert "fleet for 40 req/s" in result.stdout
    assert "tp=1 colocated, 16 seqs / 8192 tokens" in result.stdout


@pytest.mark.parametrize("flags,words", [
    (["--tp", "x"], "--tp: got 'x'"), (["--ratios", "1-2"], "--ratios: got '1-2'"),
    (["--workers", "0"], "--workers: got 0"),
])
def test_bad_options_are_one_line_errors(flags, words):
    result = runner.invoke(app, ["serve-plan", *SMALL, "--compare", "", *flags])
    assert result.exit_code != 0
    assert words in str(result.exception)
