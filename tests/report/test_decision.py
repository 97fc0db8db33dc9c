"""The report's answer: winners, ratios to the H20 and the H100, cells that do not fit, and
the export clause, on hand-made comparison data with hand-derived expectations."""

import pytest

from chipforge.arch import load_chip
from chipforge.legal import export_tier
from chipforge.report._decision import decision, export_row
from chipforge.workloads import get_workload

WL = "llama3.1-8b-decode"
H20_USD, H100_USD = 10_000.0, 30_000.0  # cost.TcoAssumptions purchase prices (silicon.md)


def _ok(chip, throughput, seconds, energy_j, chips=1):
    return {"chip": chip, "fits": True, "chips": chips, "dtype": "bf16", "batch": 32,
            "parallelism": "1 chip" if chips == 1 else f"tp={chips}", "seconds": seconds,
            "throughput": throughput, "unit": "tokens", "utilization": 0.1, "bound": "memory",
            "energy_j": energy_j, "flops": 5e11, "hbm_bytes": 2.4e10}


def _data():
    cells = [
        _ok("h20", 1000.0, 0.032, 1.0),        # 31.25 W -> 32 tokens/J
        _ok("h100-sxm", 8100.0, 0.01, 2.0, chips=2),  # 200 W a chip -> 20.25 tokens/J
        {"chip": "forge-i1", "fits": False, "chips": 1, "dtype": "bf16", "batch": 32,
         "parallelism": "1 chip", "note": "does not fit: needs >= 2 chips (tp=2)"},
        {"chip": "forge-t1", "error": "dtype bf16 not supported"},
    ]
    return {"chips": [c["chip"] for c in cells],
            "rows": [{"workload": WL, "phase": "decode", "description": "d", "cells": cells}]}


@pytest.fixture(scope="module")
def answer():
    specs = {n: load_chip(n) for n in ("h20", "h100-sxm", "forge-i1", "forge-t1")}
    return decision(_data(), {WL: get_workload(WL)}, specs)


def test_ratios_to_the_h20_and_the_h100(answer):
    h20, h100 = answer["rows"][0]["cells"][:2]
    assert h100["per_chip"] == 4050.0  # a split's group is not "faster" for its chips
    assert h100["vs"]["H20"]["per_chip"] == pytest.approx(4.05)
    # per $: (8100 / (2 x $30k)) / (1000 / $10k) = 1.35
    assert h100["vs"]["H20"]["per_kusd"] == pytest.approx(8100 / (2 * H100_USD)
                                                           / (1000 / H20_USD))
    assert h100["per_kusd"] == pytest.approx(135.0)
    # per W: 8100 / (2 x 200 W) = 20.25 tokens/J against 1000 / 31.25 W = 32 tokens/J
    assert h100["per_w"] == pytest.approx(20.25)
    assert h20["per_w"] == pytest.approx(32.0)
    assert h100["vs"]["H20"]["per_w"] == pytest.approx(20.25 / 32)
    assert h20["vs"]["H20"]["per_w"] == pytest.approx(1.0)
    assert h20["vs"]["H100"]["per_kusd"] == pytest.approx(1 / 1.35)


def test_winners_and_margins(answer):
    w = answer["rows"][0]["winners"]
    assert w["per_chip"]["chip"] == "h100-sxm" and w["per_chip"]["margin"] == pytest.approx(4.05)
    assert w["per_kusd"]["chip"] == "h100-sxm"
    assert w["per_kusd"]["margin"] == pytest.approx(1.35)
    assert w["per_w"]["chip"] == "h20" and w["per_w"]["margin"] == pytest.approx(32 / 20.25)
    assert w["ours"] is None  # forge-i1 does not fit and forge-t1 has no estimate


def test_a_cell_that_does_not_fit_has_no_number(answer):
    cell = answer["rows"][0]["cells"][2]
    assert not cell["ok"]
    assert cell["note"].startswith("does not fit: needs >= 2 chips")
    assert not {"throughput", "per_chip", "per_kusd", "per_w", "seconds"} & set(cell)
    assert answer["rows"][0]["cells"][3]["note"] == "dtype bf16 not supported"


def test_assumptions_state_dtype_parallelism_batch_price_and_power(answer):
    text = " ".join(answer["assumptions"])
    for word in ("dtype", "parallelism", "batch", "per $", "per W", "$10,000", "$30,000"):
        assert word in text, word


@pytest.mark.parametrize("chip", ["forge-t1", "forge-i1", "h100-sxm", "h20", "b200"])
def test_export_clause_agrees_with_the_legal_package(chip):
    row = export_row(load_chip(chip))
    assert row["clause"].startswith(export_tier(load_chip(chip)))


def test_our_uncontrolled_designs_say_what_limits_them():
    row = export_row(load_chip("forge-t1"))
    assert row["own"] and row["tier"] == "not controlled"
    # forge-t1's TPP 1,573 is under 1600, below which no clause of 3A090.a/.b applies
    # (88 FR 73458): TPP is its one limit, and PD none
    assert row["limit"].startswith("TPP must stay < 1600 (27 left, 1.7%)")
    assert row["limit"].endswith("no 3A090 clause applies below it, whatever the PD.")


def test_headline_counts_the_winners(answer):
    assert answer["headline"] == ["Fastest per chip: h100-sxm on 1 of 1.",
                                  "Best per $: h100-sxm on 1 of 1.",
                                  "Best per W: h20 on 1 of 1."]  # no design of ours runs
