"""Fleet-level metrics of one chip design (issue 15): what a fixed budget's fleet of it
does, priced by chipforge.cluster.

* Pre-training: the fleet ``fleet_budget_usd`` buys (chips in whole nodes of the base
  chip's system preset, at the system's price per chip), the best training plan on it
  (TP/PP/DP/CP, recompute, ZeRO; memory checked), and the days and $ to train
  ``pretrain_tokens``, failures and restarts included.
* Serving: the best deployment within the latency SLO (chipforge.cluster.serve_plan, the
  event-driven simulator) and its $ per million output tokens and tokens/s per chip.

The design keeps its base chip's system (a forge-t1 design sits in forge-t1's torus, with
the links the design has), so links and memory capacity reach the objectives.
"""

from __future__ import annotations

import functools
from typing import Any

from chipforge.arch import ChipSpec, catalog_names
from chipforge.cluster import SERVE_SYSTEM_CHIPS, System, serve_plan, system, train_plan
from chipforge.errors import ClusterError

# a design that cannot train or serve the model at all is infinitely worse; kept finite so
# that the store's CSV and Optuna take it (as the serving metrics do)
UNMET = 1e9
# the smallest tensor-parallel group that holds the model may leave little room for the KV
# cache, so the next size up is tried too; a third (serve_plan's default) costs a design
# search seconds per point on a systolic chip, and is rarely the best
SERVING_TP_SIZES = 2


@functools.cache
def _preset(base: str) -> str:
    return system(base, 1).name


def _fleet(chip: ChipSpec, base: str, chips: int) -> System:
    """A catalog chip (a reference) in its own system preset; a design point in its base
    chip's (it has no preset of its own)."""
    preset = None if chip.name in catalog_names() else _preset(base)
    return system(chip, chips, preset=preset)


def cluster_training_metrics(chip: ChipSpec, base: str, w: Any) -> dict[str, Any]:
    """Days and $ to pre-train ``w.pretrain_model`` on the fleet ``w.fleet_budget_usd``
    buys; UNMET with a note when no plan fits or the budget buys no node."""
    fleet = _fleet(chip, base, 1)
    try:
        result = train_plan(w.pretrain_model.lower(), fleet, budget_usd=w.fleet_budget_usd,
                            tokens=w.pretrain_tokens, seq_len=w.seq_len,
                            global_batch_tokens=w.global_batch_tokens, top=1)
    except ClusterError as exc:
        return {"cluster_pretrain_days": UNMET, "cluster_pretrain_usd": UNMET,
                "cluster_pretrain_chips": 0, "cluster_pretrain_note": str(exc)}
    plan = result.plan
    p = plan.parallelism
    return {"cluster_pretrain_days": plan.days, "cluster_pretrain_usd": plan.cost_usd,
            "cluster_pretrain_chips": plan.chips_used, "cluster_pretrain_mfu": plan.mfu,
            "cluster_pretrain_mw": plan.mw,
            "cluster_pretrain_plan": f"tp={p.tp} pp={p.pp} dp={p.dp} cp={p.cp} "
                                     f"recompute={p.recompute} zero={p.zero}"}


def cluster_serving_metrics(chip: ChipSpec, base: str, w: Any) -> dict[str, Any]:
    """$ per million output tokens and output tokens/s per chip of the best deployment
    that meets the SLO; UNMET with a note when none does.

    The search is serve_plan's over the SERVING_TP_SIZES smallest tensor-parallel groups
    that hold the model, colocated, 256 sequences a batch."""
    # room for the largest replica the search tries (a tensor-parallel group of up to 8
    # chips, prefill and decode replicas apart)
    fleet = _fleet(chip, base, SERVE_SYSTEM_CHIPS)
    model = w.serve_model.lower()
    try:
        # the rate only sizes the fleet; the per-chip figures are the deployment's; the
        # dtype is serve_plan's default, the chip's serving dtype (chipforge.cost)
        result = serve_plan(model, fleet, rate=1.0, slo_ttft_s=w.slo_ttft_s,
                            slo_tpot_s=w.slo_tpot_s, percentile=w.slo_percentile,
                            input_len=w.input_len, output_len=w.output_len,
                            n_requests=w.serve_requests, tp_sizes=SERVING_TP_SIZES,
                            max_seqs=(256,), ratios=())
    except ClusterError as exc:
        return {"cluster_serving_usd_per_million_tokens": UNMET,
                "cluster_serving_tokens_per_s_per_chip": 0.0, "cluster_serving_note": str(exc)}
    best = result.best
    return {"cluster_serving_usd_per_million_tokens": best.usd_per_m_tokens,
            "cluster_serving_tokens_per_s_per_chip": best.tokens_per_s_per_chip,
            "cluster_serving_deployment": best.label}
