"""The DSE's cluster objectives (issue 15 §6): a design point equal to forge-i1 gets the
same fleet figures as planning the catalog chip directly with chipforge.cluster, in the
same system preset; a budget that buys no node is unmet, with the planner's reason."""

from __future__ import annotations

import pytest
from dse_fixtures import write
from test_evaluate import FORGE_I1_SPACE, POINT

from chipforge.arch import load_chip
from chipforge.cluster import serve_plan, system, train_plan
from chipforge.dse import OBJECTIVES, EvalContext, design_chip, evaluate_point, load_problem
from chipforge.dse._cluster import UNMET

# small enough for a test: an 8B model on 1e11 tokens, and a short serving simulation
CLUSTER = """\
objectives: [cluster_pretrain_days, cluster_serving_usd_per_million_tokens]
workloads:
  cluster: {pretrain_model: Llama-3.1-8B, pretrain_tokens: 1.0e+11, seq_len: 4096,
            global_batch_tokens: 4.0e+6, fleet_budget_usd: %s, serve_model: Llama-3.1-8B,
            input_len: 512, output_len: 64, serve_requests: 60}
"""


def _evaluate(tmp_path, budget: str):
    space = write(tmp_path, "space.yaml", FORGE_I1_SPACE.replace(
        "objectives: [serving_tokens_per_s_per_usd]\n", ""))
    problem = load_problem(space, write(tmp_path, "c.yaml", CLUSTER % budget))
    return evaluate_point(EvalContext(problem), POINT)


def test_forge_i1_point_matches_planning_the_catalog_chip(tmp_path):
    ev = _evaluate(tmp_path, "2.0e+7")
    fleet = system(load_chip("forge-i1"), 64)  # the catalog chip in its own preset
    trained = train_plan("llama-3.1-8b", fleet, budget_usd=2e7, tokens=1e11, seq_len=4096,
                         global_batch_tokens=4e6, top=1).plan
    # serving on the point's chip (equal to forge-i1 but for its name: test_evaluate) in
    # forge-i1's preset, over the two smallest groups that hold 8B in fp8
    problem = load_problem(tmp_path / "space.yaml")
    design = system(design_chip(problem.space, problem.base_chip, POINT), 64,
                    preset=fleet.name)
    served = serve_plan("llama-3.1-8b", design, rate=1.0, input_len=512, output_len=64,
                        dtype="fp8_e4m3", n_requests=60, tp_sizes=2, max_seqs=(256,),
                        ratios=()).best
    m = ev.metrics
    assert m["cluster_pretrain_days"] == pytest.approx(trained.days, rel=1e-9)
    assert m["cluster_pretrain_usd"] == pytest.approx(trained.cost_usd, rel=1e-9)
    assert m["cluster_pretrain_chips"] == trained.chips_used
    assert m["cluster_serving_usd_per_million_tokens"] == pytest.approx(
        served.usd_per_m_tokens, rel=1e-9)
    assert ev.objective_values == [pytest.approx(trained.days, rel=1e-9),
                                   pytest.approx(served.usd_per_m_tokens, rel=1e-9)]
    # the budget's fleet: whole nodes, at most what $20 M buys at the preset's price
    assert m["cluster_pretrain_chips"] * fleet.price_per_chip_usd <= 2e7


def test_a_budget_that_buys_no_node_is_unmet_with_the_reason(tmp_path):
    ev = _evaluate(tmp_path, "1000.0")
    assert ev.metrics["cluster_pretrain_days"] == UNMET
    assert "budget" in ev.metrics["cluster_pretrain_note"]


def test_cluster_objectives_are_registered_with_their_groups():
    assert OBJECTIVES["cluster_pretrain_days"].needs == {"cluster_training"}
    assert OBJECTIVES["cluster_serving_tokens_per_s_per_chip"].direction == "maximize"
