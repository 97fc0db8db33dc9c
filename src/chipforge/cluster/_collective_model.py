"""Collectives on a system: alpha-beta models of NCCL-style algorithms, topology-aware.

A group of ``group`` ranks with ``stride`` between consecutive ranks (ranks fill nodes in
order) lies within one scale-up node or spans several. Within one switched node the time is
the single-chip engine's calibrated NCCL model (``chipforge.perf.estimate`` of the
``chipforge.ops`` collective), so the two never disagree. Across nodes every algorithm NCCL
could run is timed and the fastest taken, as NCCL's tuner does (``ncclTopoGetAlgoTime`` in
NVIDIA/nccl ``src/graph/tuning.cc``: latency + bytes / bandwidth):

* ring over all ranks: a node's NICs carry every crossing (bus bandwidth = the group's
  NIC bandwidth in the node, NCCL's ``nChannels * bwInter``);
* tree: chains in the nodes pipelined with a double binary tree between them;
* hierarchical: reduce-scatter in the node, all-reduce between nodes on each rank's own
  NIC (one rail), all-gather in the node, in sequence;
* NVLS tree (switches that reduce, NVLink SHARP): the node's reduction in the switch,
  pipelined with the tree between nodes.

Tori and rings of chip links use dimension-ordered (bucket) rings. Two shared physical
parameters describe the scale-out network for every chip: ``NET_EFFICIENCY`` (achieved /
NIC line rate) and the hop latency ``NET_HOP_LATENCY_S`` (chipforge.cluster._system),
fitted on data/validation/cluster/nccl_a100.csv (``_nccl_validation``).
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

from chipforge.cluster._system import System
from chipforge.errors import ClusterError
from chipforge.machine import DEFAULT, Efficiency
from chipforge.ops import all_gather, all_reduce, all_to_all, reduce_scatter
from chipforge.perf import estimate

COLLECTIVE_KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv")
# fitted (chipforge.cluster.fit_net_efficiency(): 0.5785) on the one row of
# cluster/nccl_a100.csv whose fabric is documented and whose time the model says the
# network bounds: NVIDIA/nccl issue 837, 2 x 200 Gb/s HDR per 8-GPU node, 53.95 GB/s bus
# bandwidth on 2 nodes (NCCL 2.9.9). Achieved over line rate of the NICs.
NET_EFFICIENCY = 0.578
# NCCL's latencies (tuning.cc, commit 01afd20): ring step LL / Simple, tree level LL /
# Simple across the network (hwLat[NET]) and within an NVLink node (hwLat[NVLINK]), us;
# the network's LL ring step is NET_HOP_LATENCY_S, the others keep NCCL's ratios to it
_NET_RING_US = {"LL": 2.7, "Simple": 9.6}
_NET_TREE_US = {"LL": 5.0, "Simple": 50.0}
_NVL_RING_US = {"LL": 0.6, "Simple": 3.4}
_NVL_TREE_US = {"LL": 0.6, "Simple": 4.0}
# payload per wire byte: LL carries an 8-byte flag per 8 bytes (tuning.cc: ring LL
# busBw x 1/4 across nodes, i.e. half of the intra-node 1/2); Simple carries data only
_NET_PAYLOAD = {"LL": 0.25, "Simple": 1.0}
_NVL_PAYLOAD = {"LL": 0.5, "Simple": 1.0}
# tuning.cc: tree all-reduce busBw x 0.92 (Simple; chipforge.perf's TREE_PAYLOAD, from the
# same file @5067397) and NVLS x nvlsEfficiency 0.85 (Hopper); an NVLS all-reduce needs
# 16-bit or wider elements (multimem.ld_reduce)
_TREE_EFF = 0.92
_NVLS_EFF = 0.85
_NVLS_MIN_ITEMSIZE = 2
_DTYPE_OF_ITEMSIZE = {1: "int8", 2: "bf16", 4: "fp32"}
_OPS = {"all_reduce": all_reduce, "all_gather": all_gather,
        "reduce_scatter": reduce_scatter, "all_to_all": all_to_all}


@dataclass(frozen=True)
class CollectiveTime:
    seconds: float
    algorithm: str
    bus_bytes_per_s: float  # nccl-tests bus bandwidth of this call
    nodes_spanned: int


@dataclass(frozen=True)
class _Layout:
    ranks_per_node: int
    nodes: int


def group_layout(system: System, group: int, stride: int) -> tuple[int, int]:
    """(ranks per node, nodes spanned) of a group whose consecutive ranks are ``stride``
    apart in the global order (rank r on node r // chips_per_node)."""
    k = system.chips_per_node
    per_node = 1 if stride >= k else min(group, max(1, k // stride))
    return per_node, math.ceil(group / per_node)


def _check(system: System, kind: str, nbytes: float, group: int, stride: int,
           itemsize: int) -> None:
    if kind not in COLLECTIVE_KINDS:
        raise ClusterError(f"collective kind {kind!r}; expected one of "
                           f"{', '.join(COLLECTIVE_KINDS)}")
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Real) \
            or not math.isfinite(nbytes) or nbytes < 0:
        raise ClusterError(f"nbytes: {nbytes!r}; expected a finite number of bytes >= 0")
    for name, value in (("group", group), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ClusterError(f"{name}: {value!r}; expected a whole number >= 1")
    if group * stride > system.chips and group > 1:
        raise ClusterError(f"group {group} x stride {stride} = {group * stride} ranks; "
                           f"expected at most the system's {system.chips} chips")
    if itemsize not in _DTYPE_OF_ITEMSIZE:
        raise ClusterError(f"itemsize: {itemsize!r}; expected one of "
                           f"{', '.join(map(str, _DTYPE_OF_ITEMSIZE))} bytes")


def collective_time(system: System, kind: str, nbytes: float, group: int, stride: int = 1,
                    itemsize: int = 2) -> CollectiveTime:
    """Time of one collective of ``nbytes`` (NCCL's size: the all-reduce buffer, the
    all-gather output, the reduce-scatter input, all bytes one rank sends in an all-to-all,
    the bytes sent to the next stage in a send_recv) over ``group`` ranks ``stride`` apart."""
    _check(system, kind, nbytes, group, stride, itemsize)
    if group == 1 or nbytes == 0:
        return CollectiveTime(0.0, "none", 0.0, 1)
    return _timed(system, kind, float(nbytes), int(group), int(stride), itemsize,
                  (DEFAULT, NET_EFFICIENCY))


# a plan search asks for the same few hundred collectives again and again (the report's
# training sweep on one chip: 175,825 calls, 493 distinct) and the model is a function of
# its arguments and of the module's shared parameters; ``shared`` is those parameters at the
# call (DEFAULT, NET_EFFICIENCY), so that the cache follows a changed one (fit_net_efficiency
# bisects NET_EFFICIENCY)
@functools.lru_cache(maxsize=16384)
def _timed(system: System, kind: str, nbytes: float, group: int, stride: int,
           itemsize: int, shared: tuple[Efficiency, float]) -> CollectiveTime:
    per_node, nodes = group_layout(system, group, stride)
    if kind == "send_recv":
        return _send_recv(system, nbytes, stride, nodes)
    if nodes == 1:
        options = _in_node(system, kind, nbytes, group, stride, itemsize)
    else:
        if system.network is None:
            raise ClusterError(f"system {system.name!r}: a group of {group} ranks stride "
                               f"{stride} spans {nodes} nodes, but the system has no network")
        options = _across_nodes(system, kind, nbytes, per_node, nodes, itemsize)
    name, seconds = min(options, key=lambda o: o[1])
    return CollectiveTime(seconds, name, _bus_bytes(kind, nbytes, group) / seconds, nodes)


def _bus_bytes(kind: str, nbytes: float, group: int) -> float:
    """nccl-tests' bus bytes: the ring's wire bytes per rank (PERFORMANCE.md)."""
    factor = 2 * (group - 1) / group if kind == "all_reduce" else (group - 1) / group
    return nbytes * (1.0 if kind == "send_recv" else factor)


# ---- within one node ------------------------------------------------------------------

def _engine_s(system: System, kind: str, nbytes: float, ranks: int, itemsize: int,
              eff: Efficiency = DEFAULT) -> float:
    """The single-chip engine's NCCL model of a collective within one switched node."""
    if ranks == 1:
        return 0.0
    elements = max(1, round(nbytes / itemsize))
    op = _OPS[kind](elements, ranks, _DTYPE_OF_ITEMSIZE[itemsize])
    return estimate(op, system.chip, eff).seconds


def _in_node(system: System, kind: str, nbytes: float, group: int, stride: int,
             itemsize: int) -> list[tuple[str, float]]:
    if system.topology == "switched":
        return [("nccl in node", _engine_s(system, kind, nbytes, group, itemsize))]
    extents = _torus_extents(system.torus_dims, group, stride)
    return _torus_options(system, kind, nbytes, extents, system.torus_dims)


# ---- tori and rings of chip links ------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _torus_extents(dims: tuple[int, ...], group: int, stride: int) -> tuple[int, ...]:
    """Distinct coordinates per dimension of ranks 0, stride, ..., (group-1)*stride laid
    out with dims[0] fastest; the group's block in the torus."""
    extents = []
    span = 1
    for d in dims:
        coords = {(j * stride // span) % d for j in range(min(group, d * span))}
        extents.append(len(coords))
        span *= d
    return tuple(extents)


def _ring_dir_bytes_per_s(system: System, extent: int, full: int, eff: Efficiency) -> float:
    """One rank's send rate along one torus dimension: the links to its two neighbours in
    it, one direction each (a bidirectional ring); a partial dimension is a line, whose
    ring must come back the other way, so half of that (two chips of a longer dimension
    share only the links between them)."""
    dims = max(1, len(system.torus_dims))
    links_per_neighbour = system.chip.links.count / (2 * dims)
    per_direction = system.chip.links.bandwidth_bytes_per_s / 2 * eff.link_efficiency
    both = 2 * links_per_neighbour * per_direction
    return both if extent == full else both / 2


def _torus_options(system: System, kind: str, nbytes: float, extents: tuple[int, ...],
                   dims: tuple[int, ...], eff: Efficiency = DEFAULT
                   ) -> list[tuple[str, float]]:
    hop_s = eff.link_latency_s * _NVL_RING_US["Simple"] / _NVL_RING_US["LL"]
    phases = 2 if kind == "all_reduce" else 1
    if kind == "all_to_all":
        # each rank sends nbytes/n to every peer; dimension-ordered routing loads a
        # bidirectional ring of e ranks with nbytes * e / 8 per link direction
        worst = max(nbytes * e / 8 / (_ring_dir_bytes_per_s(system, e, d, eff) / 2)
                    for e, d in zip(extents, dims, strict=True) if e > 1)
        steps = sum(e // 2 for e in extents)
        return [("torus all-to-all", eff.launch_overhead_s + steps * hop_s + worst)]
    # dimension-ordered bucket: each dimension's rings on the data left by the previous
    size, seconds, latency = nbytes, 0.0, 0.0
    for e, d in zip(extents, dims, strict=True):
        if e == 1:
            continue
        seconds += phases * (e - 1) / e * size / _ring_dir_bytes_per_s(system, e, d, eff)
        latency += phases * (e - 1) * hop_s
        size /= e
    return [(f"torus bucket ({'x'.join(map(str, extents))})",
             eff.launch_overhead_s + latency + seconds)]


# ---- across nodes ----------------------------------------------------------------------

def _net_rank_bytes_per_s(system: System, nodes: int) -> float:
    """One rank's share of the network, one direction: its NIC ports at the fitted
    efficiency, cut by the oversubscription once the group leaves one leaf switch (a
    one-switch network has no uplinks to oversubscribe)."""
    net = system.network
    assert net is not None
    rate = net.bytes_per_s_per_chip * NET_EFFICIENCY
    leaf_nodes = net.switch_radix * net.oversubscription / (1 + net.oversubscription)
    if not net.rail_optimized:
        leaf_nodes /= max(1.0, net.nics_per_chip * system.chips_per_node)
    beyond_leaf = net.tiers > 1 and nodes > leaf_nodes
    return rate / net.oversubscription if beyond_leaf else rate


def _intra_bytes_per_s(system: System, eff: Efficiency = DEFAULT) -> float:
    """A chip's scale-up send rate, one direction, at the engine's link efficiency."""
    return system.scale_up_bytes_per_s * eff.link_efficiency


def _net_unit_s(system: System) -> float:
    """Seconds per unit of NCCL's NET latency table (its LL ring step = the hop)."""
    assert system.network is not None
    return system.network.latency_s / _NET_RING_US["LL"]


def _nvl_unit_s(eff: Efficiency = DEFAULT) -> float:
    return eff.link_latency_s / _NVL_RING_US["LL"]


def _across_nodes(system: System, kind: str, nbytes: float, per_node: int, nodes: int,
                  itemsize: int) -> list[tuple[str, float]]:
    if kind == "all_to_all":
        return [_all_to_all(system, nbytes, per_node, nodes)]
    out = [_hierarchical(system, kind, nbytes, per_node, nodes, itemsize)]
    out += _flat_rings(system, kind, nbytes, per_node, nodes)
    if kind == "all_reduce":
        out += _trees(system, nbytes, per_node, nodes, itemsize)
    return out


def _flat_rings(system: System, kind: str, nbytes: float, per_node: int,
                nodes: int) -> list[tuple[str, float]]:
    """One ring through every rank; a node's crossings share its NICs (NCCL's channels),
    so the ring runs at the slower of a chip's links and the node's NICs for the group."""
    n = per_node * nodes
    phases = 2 if kind == "all_reduce" else 1
    intra_steps, inter_steps = phases * (n - nodes), phases * (nodes - 1)
    out = []
    for p in ("LL", "Simple"):
        rate = min(_intra_bytes_per_s(system) * _NVL_PAYLOAD[p],
                   per_node * _net_rank_bytes_per_s(system, nodes) * _NET_PAYLOAD[p])
        latency = (intra_steps * _NVL_RING_US[p] * _nvl_unit_s()
                   + inter_steps * _NET_RING_US[p] * _net_unit_s(system))
        wire = phases * (n - 1) / n * nbytes
        out.append((f"ring {p}", DEFAULT.launch_overhead_s + latency + wire / rate))
    return out


def _hierarchical(system: System, kind: str, nbytes: float, per_node: int, nodes: int,
                  itemsize: int) -> tuple[str, float]:
    """In-node reduce-scatter, a ring between nodes on each rank's own NIC over its
    1/per_node share, in-node all-gather (the phases a kind needs), in sequence."""
    share = nbytes / per_node
    rate = _net_rank_bytes_per_s(system, nodes)
    phases = 2 if kind == "all_reduce" else 1
    net_s = (phases * (nodes - 1) / nodes * share / rate
             + phases * (nodes - 1) * _NET_RING_US["Simple"] * _net_unit_s(system))
    intra = 0.0
    if per_node > 1:
        if kind in ("all_reduce", "reduce_scatter"):
            intra += _domain_s(system, "reduce_scatter", nbytes, per_node, itemsize)
        if kind in ("all_reduce", "all_gather"):
            intra += _domain_s(system, "all_gather", nbytes, per_node, itemsize)
    return "hierarchical", DEFAULT.launch_overhead_s + net_s + intra


def _domain_s(system: System, kind: str, nbytes: float, ranks: int, itemsize: int) -> float:
    """A collective over ``ranks`` consecutive chips of one node (switch or torus)."""
    if system.topology == "switched":
        return _engine_s(system, kind, nbytes, ranks, itemsize)
    extents = _torus_extents(system.torus_dims, ranks, 1)
    return min(s for _, s in _torus_options(system, kind, nbytes, extents,
                                            system.torus_dims))


def _trees(system: System, nbytes: float, per_node: int, nodes: int,
           itemsize: int) -> list[tuple[str, float]]:
    """All-reduce as a chain per node pipelined with a double binary tree of nodes. A
    node sends and receives its whole buffer once between 2 nodes, twice beyond (each
    node is inner in one tree: 1.5x, leaf in the other: 0.5x). In the chain each chip
    sends its buffer up and the result down (2x) through its links."""
    if system.topology != "switched":
        return []
    node_bytes = nbytes if nodes == 2 else 2 * nbytes
    net_rate = per_node * _net_rank_bytes_per_s(system, nodes)
    levels = math.ceil(math.log2(nodes))
    out = []
    for p in ("LL", "Simple"):
        payload = _NET_PAYLOAD[p]
        chain_s = 2 * nbytes / (_intra_bytes_per_s(system) * _TREE_EFF * payload) \
            if per_node > 1 else 0.0
        latency = 2 * ((per_node - 1) * _NVL_TREE_US[p] * _nvl_unit_s()
                       + levels * _NET_TREE_US[p] * _net_unit_s(system))
        out.append((f"tree {p}", DEFAULT.launch_overhead_s + latency
                    + max(chain_s, node_bytes / (net_rate * payload))))
    if system.chip.links.in_switch_reduction and itemsize >= _NVLS_MIN_ITEMSIZE \
            and per_node > 1:
        # the switch reduces the node's buffers as each chip sends its buffer once
        nvls_s = nbytes / (_intra_bytes_per_s(system) * _NVLS_EFF)
        latency = 2 * levels * _NET_TREE_US["Simple"] * _net_unit_s(system)
        out.append(("nvls tree", DEFAULT.launch_overhead_s + latency
                    + max(nvls_s, node_bytes / net_rate)))
    return out


def _all_to_all(system: System, nbytes: float, per_node: int,
                nodes: int) -> tuple[str, float]:
    """Each rank sends nbytes/n to every rank: (per_node - 1) shares over its links and
    the n - per_node others over its NIC share, at once; each send waits for its peer's
    ready signal, a network round trip."""
    n = per_node * nodes
    intra_s = (per_node - 1) / n * nbytes / _intra_bytes_per_s(system)
    net_s = (n - per_node) / n * nbytes / _net_rank_bytes_per_s(system, nodes)
    latency = 2 * _NET_RING_US["Simple"] * _net_unit_s(system)
    return "direct all-to-all", DEFAULT.launch_overhead_s + latency + max(intra_s, net_s)


def _send_recv(system: System, nbytes: float, stride: int, nodes: int) -> CollectiveTime:
    """Point-to-point to the rank ``stride`` ahead: over the network if that rank is on
    another node, else over the links (all of a switched chip's, or one neighbour's)."""
    if stride >= system.chips_per_node and system.chips > system.chips_per_node:
        if system.network is None:
            raise ClusterError(f"system {system.name!r}: a send {stride} ranks ahead leaves "
                               f"the node, but the system has no network")
        rate = _net_rank_bytes_per_s(system, 2)
        latency = _NET_RING_US["Simple"] * _net_unit_s(system)
        name = "send over network"
    else:
        rate = _intra_bytes_per_s(system)
        if system.topology != "switched":
            rate = _ring_dir_bytes_per_s(system, 2, 2, DEFAULT) / 2
        latency = _NVL_RING_US["Simple"] * _nvl_unit_s()
        name = "send over links"
    seconds = DEFAULT.launch_overhead_s + latency + nbytes / rate
    return CollectiveTime(seconds, name, nbytes / seconds, max(1, min(nodes, 2)))

