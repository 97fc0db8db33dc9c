"""The search dimensions of a space, and the chip a design point describes.

A point is a flat mapping ``dimension -> value``; every parameter given in the space is a
dimension (a fixed one has a single choice), and the memory options are one categorical
dimension whose values are labels like ``"GDDR7 x16 3GB"``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from chipforge.arch import ChipSpec, derive_chip
from chipforge.dse._errors import DseError
from chipforge.dse._memory import MEMORY_TECHS
from chipforge.dse._params import FloatParam, IntParam, StrParam
from chipforge.dse._problem import Space

MIB = 2**20


@dataclass(frozen=True)
class Dimension:
    name: str
    kind: str  # "int", "float" or "categorical"
    param: IntParam | FloatParam | StrParam | None  # None for the memory dimension
    labels: tuple[str, ...] = ()  # memory labels

    def grid_values(self, where: str) -> list[Any]:
        if self.param is None:
            return list(self.labels)
        try:
            return self.param.grid_values(where)
        except ValueError as exc:
            raise DseError(str(exc)) from None

    def size(self, where: str) -> int:
        """len(grid_values(where)) without enumerating them."""
        if self.param is None:
            return len(self.labels)
        try:
            return self.param.count(where)
        except ValueError as exc:
            raise DseError(str(exc)) from None

    def distribution(self) -> Any:
        """The Optuna distribution that samples this dimension."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        p = self.param
        if p is None or p.is_choice:
            return CategoricalDistribution(list(self.labels) if p is None else
                                           list(dict.fromkeys(p.choices)))
        if self.kind == "int":
            return IntDistribution(p.min, p.max, step=p.step, log=p.log)
        return FloatDistribution(p.min, p.max, step=None if p.log else p.step, log=p.log)


def memory_label(kind: str, stacks: int, capacity_per_stack_gb: float) -> str:
    return f"{kind} x{stacks} {capacity_per_stack_gb:g}GB"


def memory_options(space: Space, where: str) -> dict[str, tuple[str, int, float]]:
    """label -> (kind, stacks, capacity per stack in bytes), in the order written."""
    out: dict[str, tuple[str, int, float]] = {}
    for i, option in enumerate(space.params.memory or []):
        tech = MEMORY_TECHS[option.kind]
        at = f"{where}: params.memory[{i}]"
        caps = (option.capacity_per_stack_gb.grid_values(f"{at}.capacity_per_stack_gb")
                if option.capacity_per_stack_gb else [tech.capacities_per_stack_bytes[0] / 1e9])
        try:
            stacks = option.stacks.grid_values(f"{at}.stacks")
        except ValueError as exc:
            raise DseError(str(exc)) from None
        for n, cap in itertools.product(stacks, caps):
            out[memory_label(option.kind, n, cap)] = (option.kind, n, cap * 1e9)
    return out


def dimensions(space: Space, where: str = "<space>") -> list[Dimension]:
    dims = []
    for name, param in space.params:
        if param is None:
            continue
        if name == "memory":
            dims.append(Dimension("memory", "categorical", None,
                                  tuple(memory_options(space, where))))
        else:
            kind = {IntParam: "int", FloatParam: "float", StrParam: "categorical"}[type(param)]
            dims.append(Dimension(name, kind, param))
    return dims


# assumption: a grid the sampler lists in memory; 10^6 points are ~1 GB of dicts and
# months of evaluation at ~1 s a point: a larger space wants nsga2 or tpe
MAX_GRID_POINTS = 1_000_000


def grid_points(dims: list[Dimension], where: str) -> list[dict[str, Any]]:
    """Every point of a fully discrete space, last dimension varying fastest."""
    size = math.prod(d.size(f"{where}: params.{d.name}") for d in dims)
    if size > MAX_GRID_POINTS:
        raise DseError(f"{where}: the grid has {size:,} points; expected at most "
                       f"{MAX_GRID_POINTS:,} for --sampler grid (narrow the ranges, or use "
                       f"nsga2 or tpe with --trials)")
    values = [d.grid_values(f"{where}: params.{d.name}") for d in dims]
    return [dict(zip((d.name for d in dims), combo)) for combo in itertools.product(*values)]


def space_size(dims: list[Dimension]) -> int | None:
    """The number of distinct points, or None when a dimension is continuous."""
    try:
        return math.prod(d.size("") for d in dims)
    except DseError:
        return None


def canonical(point: dict[str, Any]) -> dict[str, Any]:
    """Floats rounded to 12 significant digits so a point hashes the same everywhere."""
    return {k: (float(f"{v:.12g}") if isinstance(v, float) else v)
            for k, v in sorted(point.items())}


def point_hash(point: dict[str, Any]) -> str:
    text = json.dumps(canonical(point), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def design_chip(space: Space, base: ChipSpec, point: dict[str, Any]) -> ChipSpec:
    """The chip at ``point``: the base chip with the point's values put in."""
    changes, touched = _changes(space, base, point)
    note = f"assumption: design point of DSE space {space.name!r}"
    sources = {path: f"{note}: {what}" for path, what in touched.items()}
    return derive_chip(base, changes, name=f"{space.name}-{point_hash(point)[:10]}",
                       sources=sources)


def _changes(space: Space, base: ChipSpec, p: dict[str, Any]) -> tuple[dict, dict[str, str]]:
    mu0 = base.cores.matrix_units[0]
    rows, cols = p.get("array_rows", mu0.rows), p.get("array_cols", mu0.cols)
    clock_hz = p["clock_ghz"] * 1e9 if "clock_ghz" in p else base.clock_hz
    unit = mu0.model_dump(by_alias=True)
    unit.update(rows=rows, cols=cols, count=p.get("matrix_units_per_core", mu0.count),
                macs_per_cycle=_macs(space, mu0, rows, cols, p.get("dtypes")))
    if "dtypes" in p and mu0.kind == "systolic":  # per-PE rates are the array's packing
        unit["packing"] = dict(space.dtype_sets[p["dtypes"]])
    # assumption: the local SRAM port feeds one array edge, so its width scales with the
    # longer edge; the global SRAM keeps its bytes per cycle, so its bandwidth scales with clock
    edge = max(rows, cols) / max(mu0.rows, mu0.cols)
    local = {"bytes_per_cycle": max(1, round(base.cores.local_sram.bytes_per_cycle * edge))}
    if "local_sram_mib" in p:
        local["size"] = p["local_sram_mib"] * MIB
    shared: dict[str, Any] = {"bandwidth": base.shared_buffer.bandwidth_bytes_per_s
                              * clock_hz / base.clock_hz}
    if "global_sram_mib" in p:
        shared["size"] = p["global_sram_mib"] * MIB
    cores = {"count": p.get("cores", base.cores.count), "local_sram": local,
             "matrix_units": [unit, *(u.model_dump(by_alias=True)
                                      for u in base.cores.matrix_units[1:])]}
    # a design point has no harvested (disabled) cores, SRAM or memory sites
    if "cores" in p:
        cores["physical_count"] = None
    if "global_sram_mib" in p:
        shared["physical_size"] = None
    changes: dict[str, Any] = {"clock": clock_hz, "cores": cores, "shared_buffer": shared,
                               "die_area": None, "launch_price": None,
                               "description": f"design point of DSE space {space.name!r}"}
    for key, dim in (("tdp", "tdp_w"), ("process_node", "process_node")):
        if dim in p:
            changes[key] = p[dim]
    if "links" in p:
        changes["links"] = {"count": p["links"]}
    touched = {path: f"{dim} = {p[dim]!r}" for dim, path in _PATHS.items() if dim in p}
    if "memory" in p:
        changes["memory"] = _memory(space, p["memory"])
        tech = MEMORY_TECHS[changes["memory"]["kind"]]
        touched["memory.bandwidth"] = f"memory = {p['memory']!r}; per stack {tech.source}"
    return changes, touched


_PATHS = {"clock_ghz": "clock", "tdp_w": "tdp", "process_node": "process_node",
          "cores": "cores.count", "array_rows": "cores.matrix_units[0].rows",
          "array_cols": "cores.matrix_units[0].cols", "links": "links.count",
          "matrix_units_per_core": "cores.matrix_units[0].count",
          "local_sram_mib": "cores.local_sram.size", "global_sram_mib": "shared_buffer.size",
          "memory": "memory.capacity", "dtypes": "cores.matrix_units[0].macs_per_cycle"}


def _macs(space: Space, mu0: Any, rows: int, cols: int, dtype_set: str | None) -> dict:
    """MACs per cycle per unit: the dtype set's per-PE rates, or the base's scaled by area."""
    if dtype_set is not None:
        per_pe = space.dtype_sets[dtype_set]
        return {d: max(1, round(rate * rows * cols)) for d, rate in per_pe.items()}
    scale = rows * cols / (mu0.rows * mu0.cols)
    return {d: max(1, round(m * scale)) for d, m in mu0.macs_per_cycle.items()}


def _memory(space: Space, label: str) -> dict[str, Any]:
    kind, stacks, cap_bytes = memory_options(space, space.name)[label]
    tech = MEMORY_TECHS[kind]
    return {"kind": kind, "stacks": stacks, "capacity": stacks * cap_bytes,
            "bandwidth": stacks * tech.bandwidth_per_stack_bytes_per_s, "physical_stacks": None}
