"""The report's fleet plan: the shipped document (scripts/gen_fleet_plan.py) is the plan of
the shipped demand file, its totals add up, and a user's ``fleet-plan --json`` document
is shown as given."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest

from chipforge.report._cluster import fleet_plans


def test_shipped_fleet_plan_is_of_the_shipped_demand():
    doc = fleet_plans()
    demand = resources.files("chipforge.cluster").joinpath("data/demand.yaml").read_bytes()
    assert doc["demand_sha256"] == hashlib.sha256(demand).hexdigest(), \
        "the demand changed: rerun scripts/gen_fleet_plan.py"
    assert doc["stale"] is False
    assert [p["scenario"] for p in doc["plans"]] == ["tsmc-2026", "full-ban"]


def test_shipped_fleet_totals_add_up():
    for plan in fleet_plans()["plans"]:
        assert plan["total_usd"] == pytest.approx(
            plan["capex_usd"] + plan["nre_usd"] + plan["energy_usd"], rel=1e-12)
        rows = plan["rows"]
        assert sum(r["capex_usd"] for r in rows) == pytest.approx(plan["capex_usd"], rel=1e-9)
        # pre-training runs share one pool per option (time-sliced by deadline): the pool
        # is its largest run's; every other workload has chips of its own
        for option, chips in plan["chips"].items():
            own = sum(r["chips"] for r in rows
                      if r["option"] == option and r["kind"] != "pretraining")
            pool = max([r["chips"] for r in rows
                        if r["option"] == option and r["kind"] == "pretraining"], default=0)
            assert own + pool == chips, option
        # every option a row uses is one the scenario allows
        allowed = {o["name"] for o in plan["options"] if o["allowed"]}
        assert {r["option"].removesuffix(" (owned)") for r in rows} <= allowed | {
            o["name"].removesuffix(" (owned)") for o in plan["options"]}


def test_a_users_fleet_document_is_shown_as_given(tmp_path):
    doc = {"demand": "mine", "plans": []}
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(doc))
    shown = fleet_plans(path)
    assert shown["demand"] == "mine" and shown["source"] == str(path) and not shown["stale"]
