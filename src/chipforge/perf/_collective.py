"""Collectives over the chip's links (NCCL on GPUs), as NCCL's own tuning model sees them.

NCCL times every (algorithm, protocol) pair it could run a call with and runs the fastest
(``ncclTopoGetAlgoTime`` in NVIDIA/nccl ``src/graph/tuning.cc``: ``time = latency +
bytes / bandwidth``). :func:`collective_estimate` does the same search over physical
options: a ring (every collective), a chain tree (all-reduce), the switch's in-network
reduction (NVLS, all-reduce on chips whose switch reduces) and, for all-to-all, direct
sends to every peer at once; each over the LL, LL128 or Simple protocol.

Two shared fitted parameters carry the chip-independent physics (``Efficiency``):

* ``link_efficiency``: achievable / peak link bandwidth with the Simple protocol;
* ``link_latency_s``: one ring hop with the LL protocol (a flag write seen by the peer).

Every other latency is NCCL's published one scaled by ``link_latency_s`` / NCCL's LL ring
hop, so the ratios between protocols and algorithms are NCCL's, not fitted. A kernel
launch (``launch_overhead_s``) stands for NCCL's base latency of its fastest option.
"""

from __future__ import annotations

from dataclasses import dataclass

from chipforge.arch import ChipSpec
from chipforge.machine import Efficiency
from chipforge.ops import Collective, OpKind
from chipforge.perf._energy import op_energy
from chipforge.perf._estimate import Estimate, make_estimate

# ---- NCCL's tuning constants (NVIDIA/nccl src/graph/tuning.cc, ncclTunerConstantsDefaults,
# @5067397, 2026-06) ----------------------------------------------------------------------
# hwLatencies[NVLINK][RING] = {LL 0.6, LL128 1.9, Simple 3.4} us per ring step
NCCL_RING_HOP_US = {"LL": 0.6, "LL128": 1.9, "Simple": 3.4}
# hwLatencies[NVLINK][TREE] = {0.6, 1.25, 4.0} us per tree level (twice: up and down)
NCCL_TREE_HOP_US = {"LL": 0.6, "LL128": 1.25, "Simple": 4.0}
# baseLatencies[RING] = {6.6, 14.0, 8.4}, [TREE] = {6.8, 14.0, 8.4} us
NCCL_RING_BASE_US = {"LL": 6.6, "LL128": 14.0, "Simple": 8.4}
NCCL_TREE_BASE_US = {"LL": 6.8, "LL128": 14.0, "Simple": 8.4}
# hwLatencies[NVLINK][NVLS][Simple] = 25 us, the whole latency of an NVLS call (no base)
NCCL_NVLS_LATENCY_US = 25.0
# payload per byte on the wire: LL sends an 8-byte flag with every 8 bytes of data
# (tuning.cc: ring LL busBw * .5); LL128 one 8-byte flag per 128-byte line (tuning.cc:
# ring LL128 busBw * 0.92 /*120.0/128.0*/); Simple sends data only
PROTOCOL_PAYLOAD = {"LL": 0.5, "LL128": 120.0 / 128.0, "Simple": 1.0}
# tuning.cc: tree all-reduce busBw * .92; tree LL busBw / 3.8; tree LL128 on one node 7/9
TREE_PAYLOAD = {"LL": 1.0 / 3.8, "LL128": 7.0 / 9.0, "Simple": 0.92}
# tuning.cc nvlsEfficiency: Hopper 0.85 of the link bandwidth through the switch's
# multimem loads/stores (Blackwell 0.74); assumption: 0.85 for every reducing switch
NVLS_EFFICIENCY = 0.85
# assumption: multimem.ld_reduce (PTX ISA, multimem instructions) reduces 16-bit and wider
# floats/ints in the switch; NCCL runs NVLS only for those, so 8-bit types take the ring
NVLS_MIN_ITEM_BYTES = 2.0
_PROTOCOLS = ("LL", "LL128", "Simple")


@dataclass(frozen=True)
class Option:
    """One way to run a collective: its latency and the bytes each device's busiest
    link direction carries, at the payload fraction its protocol leaves."""

    name: str
    latency_s: float
    wire_bytes: float
    payload: float


def switch_reduces(chip: ChipSpec) -> bool:
    """Whether the chip's link switch reduces in the network (NVLS): the spec's
    ``links.in_switch_reduction``, sourced per chip in the catalog."""
    return chip.links.in_switch_reduction


def ring_steps(op: Collective) -> int:
    """Ring steps: reduce-scatter then all-gather for an all-reduce (tuning.cc nsteps)."""
    n = op.devices
    return 2 * (n - 1) if op.kind is OpKind.ALL_REDUCE else n - 1


def options(op: Collective, chip: ChipSpec, eff: Efficiency) -> list[Option]:
    """Every (algorithm, protocol) NCCL could run ``op`` with on ``chip``."""
    n, size = op.devices, op.bytes
    # NCCL's latencies in units of its LL ring hop, which link_latency_s stands for
    unit_s = eff.link_latency_s / NCCL_RING_HOP_US["LL"]

    def extra_s(nccl_us: float) -> float:  # above NCCL's fastest base (our launch)
        return unit_s * (nccl_us - NCCL_RING_BASE_US["LL"])

    out = []
    if op.kind is OpKind.ALL_TO_ALL:
        # grouped sends to all n-1 peers at once, each one hop; NCCL's p2p runs LL (small)
        # or Simple, and each send first waits for its peer's ready signal: a round trip
        for p in ("LL", "Simple"):
            out.append(Option(f"direct {p}", extra_s(NCCL_RING_BASE_US[p]
                                                     + 2 * NCCL_RING_HOP_US[p]),
                              size * (n - 1) / n, PROTOCOL_PAYLOAD[p]))
        return out
    steps = ring_steps(op)
    for p in _PROTOCOLS:
        out.append(Option(f"ring {p}", extra_s(NCCL_RING_BASE_US[p] + steps
                                               * NCCL_RING_HOP_US[p]),
                          op.wire_bytes, PROTOCOL_PAYLOAD[p]))
    if op.kind is not OpKind.ALL_REDUCE:
        return out
    for p in _PROTOCOLS:
        # a chain on one node: reduce up, broadcast down; NCCL's bus/algo ratio is 1/2
        out.append(Option(f"tree {p}", extra_s(NCCL_TREE_BASE_US[p] + 2 * (n - 1)
                                               * NCCL_TREE_HOP_US[p]),
                          2 * size, TREE_PAYLOAD[p]))
    if switch_reduces(chip) and op.itemsize >= NVLS_MIN_ITEM_BYTES and n > 1:
        # each device sends its whole buffer into the switch's reductions and its 1/n
        # share of the result back out for the multicast: (1 + 1/n) of the buffer
        out.append(Option("nvls Simple", extra_s(NCCL_NVLS_LATENCY_US),
                          size * (1 + 1 / n), NVLS_EFFICIENCY))
    return out


def option_seconds(opt: Option, chip: ChipSpec, eff: Efficiency) -> float:
    per_direction = chip.links.total_bytes_per_s / 2 * eff.link_efficiency
    return eff.launch_overhead_s + max(opt.latency_s, 0.0) \
        + opt.wire_bytes / (per_direction * opt.payload)


def best_option(op: Collective, chip: ChipSpec, eff: Efficiency) -> Option:
    return min(options(op, chip, eff), key=lambda o: option_seconds(o, chip, eff))


def collective_estimate(op: Collective, chip: ChipSpec, eff: Efficiency) -> Estimate:
    """The fastest of NCCL's options for ``op`` (tuning.cc ``ncclTopoGetAlgoTime``)."""
    opt = best_option(op, chip, eff)
    seconds = option_seconds(opt, chip, eff)
    overhead = eff.launch_overhead_s + max(opt.latency_s, 0.0)
    network_s = seconds - overhead
    energy = op_energy(chip, vector_ops=op.flops, link_bytes=opt.wire_bytes,
                       dram_bytes=2 * opt.wire_bytes, seconds=seconds)
    return make_estimate(compute_s=0.0, memory_s=0.0, network_s=network_s,
                         overhead_s=overhead, flops=op.flops, hbm_bytes=2 * opt.wire_bytes,
                         energy=energy, ideal_s=0.0,
                         mapping=f"{opt.name} over {op.devices} devices")
