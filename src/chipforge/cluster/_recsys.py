"""Recommendation models at cluster scale (docs/cluster.md, "Recommendation models"): DLRM
training with planner-chosen embedding sharding, DLRM inference at a QPS and p99 bound, and
the MLPerf Training DLRM-DCNv2 validation."""

from chipforge.cluster._recsys_model import DLRMSpec, dlrm_spec
from chipforge.cluster._recsys_serve import (
    BatchPoint,
    DLRMServePlan,
    batched_wait_quantile_s,
    dlrm_inference_plan,
)
from chipforge.cluster._recsys_shard import ShardingPlan, TableShard
from chipforge.cluster._recsys_step import DLRMStep, DLRMTrainPlan, dlrm_step, dlrm_train_plan
from chipforge.cluster._recsys_validation import recsys_validation, recsys_validation_markdown

__all__ = [
    "BatchPoint", "DLRMServePlan", "DLRMSpec", "DLRMStep", "DLRMTrainPlan", "ShardingPlan",
    "TableShard", "batched_wait_quantile_s", "dlrm_inference_plan", "dlrm_spec", "dlrm_step",
    "dlrm_train_plan", "recsys_validation", "recsys_validation_markdown",
]
