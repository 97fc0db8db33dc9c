"""Regenerate src/chipforge/report/fleet_plans.json: the fleet plan of the shipped default
demand (src/chipforge/cluster/data/demand.yaml) under each legal scenario, which the report
shows. The planners behind it (training plans, serving simulations, DLRM plans for every
workload and option) take about 15 minutes on 2 cores, too long for ``chipforge report``,
so the report reads this file, as it reads perf/held_out_scores.json.

    .venv/bin/python scripts/gen_fleet_plan.py [--store out/fleet-store] [--workers 2]

The planners' results go to a resumable store (default out/fleet-store): a rerun after an
interruption continues; delete the store after a model change. The file records the
demand file's SHA-256, and tests/report/test_cluster_section.py fails when the shipped
demand no longer matches it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from chipforge.cluster import PlannerCoefficients, fleet_plan, load_demand

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "chipforge" / "report" / "fleet_plans.json"
SCENARIOS = ("tsmc-2026", "full-ban")


def demand_sha256() -> str:
    text = resources.files("chipforge.cluster").joinpath("data/demand.yaml").read_bytes()
    return hashlib.sha256(text).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "out" / "fleet-store")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.store.mkdir(parents=True, exist_ok=True)
    planners = PlannerCoefficients(args.store / "fleet_plan.jsonl", workers=args.workers)
    demand = load_demand()
    plans = [fleet_plan(demand, name, provider=planners).to_dict() for name in SCENARIOS]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    OUT.write_text(json.dumps({
        "generated_by": "scripts/gen_fleet_plan.py", "commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"), "demand_sha256": demand_sha256(),
        "demand": plans[0]["demand"], "plans": plans}, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
