"""Collectives over the chip's links (NCCL on GPUs)."""

from __future__ import annotations

from chipforge.arch import ChipSpec
from chipforge.machine import Efficiency
from chipforge.ops import Collective, OpKind
from chipforge.perf._energy import op_energy
from chipforge.perf._estimate import Estimate, make_estimate


def collective_estimate(op: Collective, chip: ChipSpec, eff: Efficiency) -> Estimate:
    """Ring collectives over the chip's links (nccl-tests PERFORMANCE.md bus-bandwidth model):
    ``steps x hop latency + wire bytes / link bandwidth`` per direction."""
    n = op.devices
    steps = 2 * (n - 1) if op.kind is OpKind.ALL_REDUCE else n - 1
    per_direction = chip.links.total_bytes_per_s / 2
    network_s = op.wire_bytes / (per_direction * eff.link_efficiency)
    overhead = steps * eff.link_latency_s + eff.launch_overhead_s
    seconds = network_s + overhead
    energy = op_energy(chip, vector_ops=op.flops, link_bytes=op.wire_bytes,
                       dram_bytes=2 * op.wire_bytes, seconds=seconds)
    return make_estimate(compute_s=0.0, memory_s=0.0, network_s=network_s,
                         overhead_s=overhead, flops=op.flops, hbm_bytes=2 * op.wire_bytes,
                         energy=energy, ideal_s=0.0,
                         mapping=f"ring over {n} devices, {steps} steps")
