"""The fused MoE layer (routing, grouped expert GEMMs, combine) on one chip.

Placeholder until the model lands: the op is refused with a clear error."""

from __future__ import annotations

from chipforge.arch import ChipSpec
from chipforge.errors import WorkloadError
from chipforge.machine import Efficiency
from chipforge.ops import Op
from chipforge.perf._estimate import Estimate


def moe_estimate(op: Op, chip: ChipSpec, eff: Efficiency) -> Estimate:
    raise WorkloadError(f"estimate: the fused MoE op is not modelled yet ({op.describe()})")
