"""Systems: N chips of one type in a topology, from the presets in ``data/systems.yaml``.

A system is scale-up domains ("nodes") of ``chips_per_node`` chips joined by a scale-out
network, or a torus/ring of the chips' own links. The network is a folded-Clos fat tree:
its tiers follow from the switch radix and the number of NIC ports it must connect, and
its price and power per chip follow from the ports, NICs and links those tiers use.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chipforge.arch import ChipSpec, load_chip, parse_yaml, read_text
from chipforge.cost import CostError, chip_capex_usd
from chipforge.errors import ChipforgeError, ClusterError, SpecError
from chipforge.legal import check_scenario

__all__ = ["Network", "System", "load_system", "system", "system_names",
           "NET_HOP_LATENCY_S", "MAX_CHIPS", "fat_tree_tiers", "parse_systems",
           "torus_dims_for"]

TOPOLOGIES = ("switched", "torus2d", "torus3d", "ring")
# assumption: the largest system anyone builds today is ~100k-200k GPUs (xAI Colossus,
# 2025); a million chips bounds memory and time of everything sized by the chip count
MAX_CHIPS = 1_000_000
# source: NVIDIA/nccl src/graph/tuning.cc (commit 01afd20, hwLat[NET][Ring][LL] = 2.7 us):
# NCCL's latency of one ring step across the network (NIC, one switch, the flag's
# round trip through host-visible memory). Shared by every chip: it is the NIC and
# switch, not the accelerator. Each further tier adds two switch traversals.
NET_HOP_LATENCY_S = 2.7e-6
_DATA = "systems.yaml"


class _Sourced(BaseModel):
    """A number with its provenance: exactly one of source / assumption."""

    model_config = ConfigDict(extra="forbid")
    value: float
    source: str | None = None
    assumption: str | None = None

    @model_validator(mode="after")
    def _one_provenance(self) -> _Sourced:
        if (self.source is None) == (self.assumption is None):
            raise ValueError("expected exactly one of 'source' or 'assumption' with the value")
        if not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"value {self.value!r}: expected a finite number >= 0")
        return self


class _NetworkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str
    nic_gbit_per_s: _Sourced
    switch_radix: _Sourced
    switch_hop_latency_s: _Sourced
    nic_usd: _Sourced
    nic_w: _Sourced
    switch_port_usd: _Sourced
    switch_port_w: _Sourced
    link_usd: _Sourced
    link_w: _Sourced


class _PresetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chip: str
    source: str
    topology: Literal[TOPOLOGIES]  # type: ignore[valid-type]
    chips_per_node: _Sourced
    torus_dims: tuple[int, ...] = ()
    network: str | None = None
    nics_per_chip: _Sourced | None = None
    oversubscription: _Sourced | None = None
    rail_optimized: bool = True
    host_usd_per_chip: _Sourced
    host_w_per_chip: _Sourced
    chip_price_usd: _Sourced | None = None


class _SystemsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    networks: dict[str, _NetworkSpec]
    defaults: dict[str, str]
    presets: dict[str, _PresetSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Network:
    """A rail-optimized (or plain) fat tree of NICs between scale-up nodes."""

    name: str
    nics_per_chip: float  # NIC ports per chip (0.5: one NIC per 2 chips)
    nic_bytes_per_s: float  # per NIC, one direction
    latency_s: float  # one hop incl. switch(es), as NCCL's tuner sees it
    switch_radix: int
    oversubscription: float = 1.0  # leaf down/up port ratio; 1.0 = non-blocking
    rail_optimized: bool = True
    tiers: int = 1  # switch tiers the system's NIC count needs
    usd_per_chip: float = 0.0  # NICs, switch ports and links per chip
    w_per_chip: float = 0.0

    @property
    def bytes_per_s_per_chip(self) -> float:
        return self.nics_per_chip * self.nic_bytes_per_s


@dataclass(frozen=True)
class System:
    """``chips`` chips of one type: nodes of ``chips_per_node`` and a network between."""

    name: str
    chip: ChipSpec
    chips: int
    chips_per_node: int
    topology: str
    torus_dims: tuple[int, ...]
    network: Network | None
    price_per_chip_usd: float  # chip + server share + network share
    power_per_chip_w: float  # chip TDP + host share + network share (provisioned, max)
    source: str

    @property
    def nodes(self) -> int:
        return math.ceil(self.chips / self.chips_per_node)

    @property
    def scale_up_bytes_per_s(self) -> float:
        """Per chip, one direction: half the chip's links' both-way total."""
        return self.chip.links.total_bytes_per_s / 2

    @property
    def scale_out_bytes_per_s(self) -> float:
        """Per chip, one direction, over the network (0 without one)."""
        return self.network.bytes_per_s_per_chip if self.network else 0.0

    @property
    def price_usd(self) -> float:
        return self.price_per_chip_usd * self.chips

    @property
    def power_w(self) -> float:
        return self.power_per_chip_w * self.chips


def fat_tree_tiers(endpoints: float, radix: int, oversubscription: float = 1.0) -> int:
    """Switch tiers of a folded Clos for ``endpoints`` ports: one switch takes ``radix``;
    each further tier multiplies the reach by radix/2 (half the ports face down), and a
    leaf with down/up ratio ``oversubscription`` reaches that many times more."""
    if endpoints <= radix:
        return 1
    leaf_down = radix * oversubscription / (1 + oversubscription)
    tiers, reach = 2, leaf_down * radix
    while reach < endpoints:
        tiers, reach = tiers + 1, reach * radix / 2
    return tiers


def _network_share(net: _NetworkSpec, nics_per_chip: float, oversub: float,
                   tiers: int) -> tuple[float, float]:
    """($, W) per chip of NICs, switch ports and links. Per NIC port of a non-blocking
    tree of L tiers: 2L - 1 switch ports (down and up at each tier below the top, down at
    the top) and L links; ports and links above the leaf shrink by the oversubscription."""
    ports = 1 + 2 * (tiers - 1) / oversub
    links = 1 + (tiers - 1) / oversub
    usd = nics_per_chip * (net.nic_usd.value + ports * net.switch_port_usd.value
                           + links * net.link_usd.value)
    watts = nics_per_chip * (net.nic_w.value + ports * net.switch_port_w.value
                             + links * net.link_w.value)
    return usd, watts


@functools.cache
def _shipped_file() -> _SystemsFile:
    return _read_systems(Path(__file__).with_name("data") / _DATA,
                         f"chipforge/cluster/data/{_DATA}")


def _read_systems(path: Path, where: str) -> _SystemsFile:
    if path.is_dir():
        raise ClusterError(f"{where}: is a directory; expected a systems YAML file")
    text = read_text(path, where, "systems", ClusterError)
    return parse_systems(parse_yaml(text, where, ClusterError), where)


def _systems_file(path: str | Path | None = None) -> _SystemsFile:
    """The shipped presets, or those of the YAML file at ``path`` (same schema)."""
    return _shipped_file() if path is None else _read_systems(Path(path), str(path))


def parse_systems(raw: object, where: str) -> _SystemsFile:
    """Validate a systems document; one ClusterError naming the field and the value."""
    try:
        doc = _SystemsFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"])
        raise ClusterError(f"{where}: {path}: {err['msg']} (got {err.get('input')!r})") \
            from None
    for name, preset in doc.presets.items():
        if preset.network is not None and preset.network not in doc.networks:
            raise ClusterError(f"{where}: presets.{name}.network: {preset.network!r} is not "
                               f"a network; expected one of {', '.join(doc.networks)}")
        if preset.topology.startswith("torus") and \
                len(preset.torus_dims) != int(preset.topology[-2]):
            raise ClusterError(f"{where}: presets.{name}.torus_dims: "
                               f"{list(preset.torus_dims)!r}; expected "
                               f"{preset.topology[-2]} sizes for a {preset.topology}")
    for chip, preset in doc.defaults.items():
        if preset not in doc.presets:
            raise ClusterError(f"{where}: defaults.{chip}: {preset!r} is not a preset")
    return doc


def system_names() -> list[str]:
    """The presets in ``data/systems.yaml``, sorted."""
    return sorted(_systems_file().presets)


def _check_chips(chips: object) -> int:
    if isinstance(chips, bool) or not isinstance(chips, numbers.Integral) \
            or not 1 <= chips <= MAX_CHIPS:
        raise ClusterError(f"chips: {chips!r}; expected a whole number of chips from 1 to "
                           f"{MAX_CHIPS:,}")
    return int(chips)


def torus_dims_for(chips: int, max_dims: tuple[int, ...]) -> tuple[int, ...]:
    """The torus of ``chips`` (at most the pod ``max_dims``): the most cube-like factoring
    of ``chips`` into len(max_dims) sizes, each within its pod size, largest first."""
    best: tuple[int, ...] | None = None

    def search(left: int, dims: tuple[int, ...]) -> None:
        nonlocal best
        k = len(dims)
        if k == len(max_dims):
            if left == 1 and (best is None or max(dims) < max(best)):
                best = dims
            return
        for d in range(1, min(left, max_dims[k]) + 1):
            if left % d == 0:
                search(left // d, (*dims, d))

    search(min(chips, math.prod(max_dims)), ())
    if best is None:
        raise ClusterError(f"chips: {chips!r} does not factor into a torus within "
                           f"{'x'.join(map(str, max_dims))}; expected a count whose factors "
                           f"fit those sizes")
    return tuple(sorted(best, reverse=True))


def load_system(name: str, chips: int, path: str | Path | None = None) -> System:
    """Preset ``name`` (``system_names()``) scaled to ``chips`` chips; ``path``: a systems
    YAML file of one's own (the schema of ``data/systems.yaml``) instead of the shipped one."""
    doc = _systems_file(path)
    if name not in doc.presets:
        raise ClusterError(f"system preset {name!r} unknown; expected one of: "
                           f"{', '.join(sorted(doc.presets))}")
    return _build(name, doc.presets[name], doc, load_chip(doc.presets[name].chip),
                  _check_chips(chips))


def system(chip: str | ChipSpec, chips: int, preset: str | None = None) -> System:
    """``chips`` chips of ``chip`` in its default preset (or ``preset``). A spec that is not
    a catalog chip takes the default preset of the catalog chip of the same name, if any."""
    try:
        spec = chip if isinstance(chip, ChipSpec) else load_chip(chip)
    except SpecError as exc:
        raise ClusterError(f"chip: {exc}") from None
    doc = _systems_file()
    name = preset or doc.defaults.get(spec.name)
    if name is None:
        raise ClusterError(f"chip {spec.name!r} has no default system; expected preset= "
                           f"one of: {', '.join(system_names())}")
    if name not in doc.presets:
        raise ClusterError(f"preset {name!r} unknown; expected one of: "
                           f"{', '.join(system_names())}")
    return _build(name, doc.presets[name], doc, spec, _check_chips(chips))


def _chip_price_usd(spec: ChipSpec, preset: _PresetSpec, name: str) -> float:
    if preset.chip_price_usd is not None and spec.name == preset.chip:
        return preset.chip_price_usd.value
    try:
        return chip_capex_usd(spec)
    except CostError as exc:
        raise ClusterError(f"preset {name!r}: {exc}") from None


def _build(name: str, p: _PresetSpec, doc: _SystemsFile, spec: ChipSpec,
           chips: int) -> System:
    per_node = int(p.chips_per_node.value)
    dims: tuple[int, ...] = ()
    if p.topology.startswith("torus"):
        dims = torus_dims_for(min(chips, per_node), p.torus_dims)
    elif p.topology == "ring":
        dims = (min(chips, per_node),)
    if p.network is None and chips > per_node:
        raise ClusterError(f"chips: {chips!r}; preset {name!r} has no network between its "
                           f"{per_node}-chip nodes, so expected at most {per_node}")
    network = None
    if p.network is not None and chips > per_node:
        network = _network(doc.networks[p.network], p, spec, chips)
    net_usd = network.usd_per_chip if network else 0.0
    net_w = network.w_per_chip if network else 0.0
    price = _chip_price_usd(spec, p, name) + p.host_usd_per_chip.value + net_usd
    power = spec.tdp_w + p.host_w_per_chip.value + net_w
    return System(name=name, chip=spec, chips=chips, chips_per_node=min(per_node, chips),
                  topology=p.topology, torus_dims=dims, network=network,
                  price_per_chip_usd=price, power_per_chip_w=power, source=p.source)


def _network(net: _NetworkSpec, p: _PresetSpec, spec: ChipSpec, chips: int) -> Network:
    nics = p.nics_per_chip.value if p.nics_per_chip else 1.0
    oversub = p.oversubscription.value if p.oversubscription else 1.0
    if nics <= 0 or oversub < 1:
        raise ClusterError(f"preset for {spec.name!r}: nics_per_chip {nics!r} / "
                           f"oversubscription {oversub!r}; expected > 0 and >= 1")
    radix = int(net.switch_radix.value)
    # a rail-optimized fabric is one tree per rail: each holds one NIC per node
    per_node = int(p.chips_per_node.value)
    rails = max(1, round(nics * per_node)) if p.rail_optimized else 1
    tiers = fat_tree_tiers(chips * nics / rails, radix, oversub)
    usd, watts = _network_share(net, nics, oversub, tiers)
    latency = NET_HOP_LATENCY_S + 2 * (tiers - 1) * net.switch_hop_latency_s.value
    return Network(name=net.description, nics_per_chip=nics,
                   nic_bytes_per_s=net.nic_gbit_per_s.value * 1e9 / 8, latency_s=latency,
                   switch_radix=radix, oversubscription=oversub,
                   rail_optimized=p.rail_optimized, tiers=tiers, usd_per_chip=usd,
                   w_per_chip=watts)


def purchase_verdict(chip: str, scenario: str | None) -> str | None:
    """The export verdict on buying ``chip`` under a chipforge.legal scenario (None: no
    scenario, or a chip the rules cannot measure: unknown, never taken as allowed)."""
    if scenario is None:
        return None
    try:
        return check_scenario(load_chip(chip), scenario).verdict
    except ChipforgeError:
        return None
