"""Objectives by name: which metric of an evaluated point, and which way is better."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Objective:
    name: str
    direction: Literal["maximize", "minimize"]
    # workload groups to evaluate: "serving", "training", "cluster_training",
    # "cluster_serving"
    needs: frozenset[str]
    description: str


def _obj(name: str, direction: Literal["maximize", "minimize"], needs: set[str],
         description: str) -> Objective:
    return Objective(name, direction, frozenset(needs), description)


# every objective is a metric of the same name in an evaluated point's metrics
OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    _obj("serving_tokens_per_s_per_usd", "maximize", {"serving"},
         "serving mix tokens/s per chip (weighted harmonic mean) / unit cost"),
    _obj("serving_usd_per_million_tokens", "minimize", {"serving"},
         "serving mix TCO, $ per million tokens (chipforge.cost.serving_tco: capital incl. "
         "host share, energy at PUE; GPUs at purchase price)"),
    _obj("serving_tokens_per_s", "maximize", {"serving"},
         "serving mix tokens/s per chip (weighted harmonic mean)"),
    _obj("serving_tokens_per_j", "maximize", {"serving"},
         "serving mix tokens per joule of chip energy"),
    _obj("training_tokens_per_s_per_usd", "maximize", {"training"},
         "training tokens/s per chip / unit cost"),
    _obj("training_tokens_per_s", "maximize", {"training"}, "training tokens/s per chip"),
    _obj("training_usd_per_million_tokens", "minimize", {"training"},
         "training TCO, $ per million tokens (chipforge.cost.training_tco)"),
    _obj("cluster_pretrain_days", "minimize", {"cluster_training"},
         "days to pre-train the cluster workload's model on the fleet its budget buys "
         "(chipforge.cluster.train_plan: best plan, memory checked, failures included)"),
    _obj("cluster_pretrain_usd", "minimize", {"cluster_training"},
         "$ of that pre-training run (capital amortized over the run + energy at PUE)"),
    _obj("cluster_serving_usd_per_million_tokens", "minimize", {"cluster_serving"},
         "$ per million output tokens of the best deployment within the latency SLO "
         "(chipforge.cluster.serve_plan, event-driven simulation)"),
    _obj("cluster_serving_tokens_per_s_per_chip", "maximize", {"cluster_serving"},
         "output tokens/s per chip of the best deployment within the latency SLO"),
    _obj("unit_cost_usd", "minimize", set(), "unit cost of one chip (die, memory, package)"),
    _obj("die_area_mm2", "minimize", set(), "modelled die area"),
    _obj("power_w", "minimize", set(), "highest average power over the evaluated workloads"),
)}


def needed_groups(names: list[str]) -> frozenset[str]:
    return frozenset().union(*(OBJECTIVES[n].needs for n in names))
