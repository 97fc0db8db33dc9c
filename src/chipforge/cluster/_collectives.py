"""Collectives on a system (the model: ``_collective_model``) and their validation against
published inter-node measurements (``_nccl_validation``): the public names of both."""

from chipforge.cluster._collective_model import (
    COLLECTIVE_KINDS,
    NET_EFFICIENCY,
    CollectiveTime,
    collective_time,
    group_layout,
)
from chipforge.cluster._nccl_validation import (
    NcclRow,
    fit_net_efficiency,
    nccl_validation,
    nccl_validation_markdown,
    single_node_nccl_scores,
)

__all__ = ["COLLECTIVE_KINDS", "NET_EFFICIENCY", "CollectiveTime", "NcclRow",
           "collective_time", "fit_net_efficiency", "group_layout", "nccl_validation",
           "nccl_validation_markdown", "single_node_nccl_scores"]
