"""The chip spec language: pydantic models validated from YAML.

GPUs and our accelerators share one language. On a GPU an SM is a core, its tensor cores
are its matrix units, shared memory is its local SRAM and L2 is the shared buffer.
Quantities carry units in YAML (``"1.41 GHz"``) and are stored in SI base units, with the
unit in the field name (``clock_hz``).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chipforge.arch._units import parse_quantity

DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "int8")
DType = Literal["fp32", "tf32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "int8"]
BITS: dict[str, int] = {"fp32": 32, "tf32": 32, "bf16": 16, "fp16": 16,
                        "fp8_e4m3": 8, "fp8_e5m2": 8, "int8": 8}
VECTOR_OPS = ("add", "mul", "fma", "max", "sum", "exp", "rsqrt", "recip", "cast",
              "gelu", "silu", "relu", "tanh", "gather")
# TSMC-class nodes the energy and (later) area tables cover; 4N/4NP are NVIDIA's N4 variants;
# SMIC-N+2 is SMIC's second-generation 7 nm-class DUV node (TechInsights, Sept 2023)
PROCESS_NODES = ("N16", "N12", "N7", "N6", "N5", "4N", "N4", "4NP", "N3", "N2", "SMIC-N+2")
MEMORY_KINDS = ("HBM2e", "HBM3", "HBM3e", "LPDDR5", "LPDDR5X", "GDDR6", "GDDR7", "DDR5")

# Plausible ranges, SI units. They refuse typos and hostile values (inf, nan, 1e400) before
# any model runs on them, and are wide enough for any chip built or announced.
# assumption: 1 MHz-20 GHz covers every digital clock (the fastest CPUs boost to ~6 GHz).
# Power 0.1 W-1 MW (a Cerebras WSE-3 system is ~23 kW); area up to 1 m2 (a 300 mm wafer is
# 70,686 mm2: the cost model, not the spec, says a die does not fit a wafer). Sizes up to
# 1 PB and bandwidths up to 1 PB/s (WSE-3's 44 GB SRAM at 21 PB/s is the outlier: 100 PB/s).
# Money up to $100M per chip.
QUANTITY_RANGES: dict[str, tuple[float, float]] = {
    "frequency": (1e6, 20e9), "power": (0.1, 1e6), "area": (1e-3, 1e6),
    "size": (1.0, 1e15), "bandwidth": (1.0, 1e17), "money": (1.0, 1e8)}
# assumption: counts far beyond any real chip (WSE-3 has 900,000 cores; arrays of 256x256
# are the largest built) are typos; the upper bounds keep the mapping searches bounded
MAX_CORES = 1_000_000
MAX_ARRAY_SIDE = 4096
MAX_UNITS = 1024  # matrix units per core, links, memory stacks, dies
MAX_LANES = 1_000_000
MAX_MACS = 2**31  # MACs per cycle per unit per dtype
MAX_BYTES_PER_CYCLE = 2**31
# a systolic cell performs up to 16 narrow products per cycle, or one wide product in up to
# 16 passes (bf16x3 emulation of fp32 takes 3); outside that the rate is not an array's
MAX_PACKING = 16
# The densest SRAM bitcell of any node a spec may name: TSMC N2's high-density 6T cell,
# 0.0175 um2 (TSMC, IEDM 2024, as reported by WikiChip and Tom's Hardware; N3E and N5 are
# 0.021 um2, chipforge.cost's node tables). The bitcells alone, with no periphery, are
# a hard floor for the area a spec's SRAM takes on its dies.
DENSEST_SRAM_BITCELL_UM2 = 0.0175


class DerivedMismatch(ValueError):
    """A field that disagrees with the fields it follows from; ``sub`` is its path within
    the model that raised it (``macs_per_cycle.bf16``)."""

    def __init__(self, sub: str, message: str):
        super().__init__(message)
        self.sub = sub


def _quantity(dimension: str):
    """A positive quantity read from ``"<number> <unit>"``, stored in SI base units."""

    def check(value: object, info: ValidationInfo) -> float:
        # derive_chip re-validates a dumped spec whose quantities are already SI numbers
        si = bool(info.context and info.context.get("si_numbers"))
        if si and isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            number = parse_quantity(value, dimension)
        if not math.isfinite(number):
            raise ValueError(f"expected a finite {dimension}")
        if number <= 0:
            raise ValueError(f"expected a positive {dimension}")
        low, high = QUANTITY_RANGES[dimension]
        if not low <= number <= high:
            raise ValueError(f"expected a {dimension} between {low:g} and {high:g} "
                             f"{_SI_UNIT[dimension]}")
        return number

    return BeforeValidator(check)


_SI_UNIT = {"frequency": "Hz", "power": "W", "area": "mm2", "size": "B", "bandwidth": "B/s",
            "money": "USD"}

Hz = Annotated[float, _quantity("frequency")]
Watts = Annotated[float, _quantity("power")]
Mm2 = Annotated[float, _quantity("area")]
Bytes = Annotated[float, _quantity("size")]
BytesPerS = Annotated[float, _quantity("bandwidth")]
Usd = Annotated[float, _quantity("money")]
PositiveInt = Annotated[int, Field(gt=0, strict=True)]


def _count(high: int) -> Any:
    """A strictly positive integer up to ``high``."""
    return Annotated[int, Field(gt=0, le=high, strict=True)]


Units = _count(MAX_UNITS)

# assumption: 1e6-1e14 transistors covers every chip built or announced (Cerebras WSE-3, a
# whole wafer, has 4e12) and refuses a count written in billions by mistake (`80`)
TRANSISTOR_RANGE = (1e6, 1e14)


def _transistor_count(value: object) -> float:
    """A packaged chip's total transistor count: a number, or a numeric string (YAML 1.1
    reads ``80e9``, without a dot, as a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a transistor count, a number like 80e9")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ValueError("expected a transistor count, a number like 80e9") from None
    if not math.isfinite(number):
        raise ValueError("expected a finite transistor count")
    low, high = TRANSISTOR_RANGE
    if not low <= number <= high:
        raise ValueError(f"expected a transistor count between {low:g} and {high:g}")
    return number


Transistors = Annotated[float, BeforeValidator(_transistor_count)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatrixUnit(_Spec):
    """A systolic array or a group of tensor cores."""

    kind: Literal["systolic", "tensor_core"]
    count: Units = 1  # units per core
    rows: _count(MAX_ARRAY_SIDE)  # array shape; for tensor cores the native MMA tile
    cols: _count(MAX_ARRAY_SIDE)
    dataflows: tuple[Literal["ws", "os"], ...] = ("ws",)  # systolic schedules supported
    # systolic only: products per cell per cycle, per dtype (2 = two fp8 products in a bf16
    # cell, 0.25 = fp32 in four passes). Given, it derives macs_per_cycle or checks it
    packing: dict[DType, Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = None
    # dense MACs per cycle per unit, per dtype; a systolic array's is rows x cols x packing
    macs_per_cycle: dict[DType, _count(MAX_MACS)]
    # tensor cores: where the MMA reads its operands. "warp_registers": each warp loads its
    # fragments from shared memory into registers (mma.sync), so a CTA tile's operands are
    # read from shared memory once per warp that needs them; "shared_memory": the MMA
    # reads them from shared memory itself, once per warpgroup or CTA (wgmma, tcgen05)
    mma_operands: Literal["warp_registers", "shared_memory"] = "shared_memory"

    @model_validator(mode="before")
    @classmethod
    def _derive_macs(cls, data: Any) -> Any:
        """Fill in a systolic array's MACs per cycle from rows x cols x packing."""
        if (isinstance(data, dict) and data.get("macs_per_cycle") is None
                and isinstance(data.get("packing"), dict) and data.get("kind") == "systolic"
                and all(isinstance(data.get(k), int) for k in ("rows", "cols"))):
            cells = data["rows"] * data["cols"]
            derived = {}
            for dtype, pack in data["packing"].items():
                if isinstance(pack, int | float) and math.isfinite(pack) and pack > 0:
                    derived[dtype] = cells * Fraction(pack).limit_denominator(MAX_PACKING)
            if all(v.denominator == 1 for v in derived.values()):
                return {**data, "macs_per_cycle": {d: int(v) for d, v in derived.items()}}
        return data

    @field_validator("macs_per_cycle")
    @classmethod
    def _follow_the_array(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        kind, rows, cols = (info.data.get(k) for k in ("kind", "rows", "cols"))
        packing = info.data.get("packing")
        if kind != "systolic" or rows is None or cols is None:
            if packing is not None and kind == "tensor_core":
                raise DerivedMismatch("packing", "packing applies to systolic arrays only; a "
                                      "tensor core's rows x cols is its MMA tile, not its "
                                      "MAC count: give macs_per_cycle alone")
            return value
        if packing is not None:
            _check_packed(value, packing, rows, cols)
        else:
            _check_plausible_packing(value, rows, cols)
        return value


def _packing_text(pack: float) -> str:
    frac = Fraction(pack).limit_denominator(MAX_PACKING)
    return str(frac) if frac.denominator > 1 else f"{pack:g}"


def _check_packed(macs: dict[str, int], packing: dict[str, float], rows: int,
                  cols: int) -> None:
    """macs_per_cycle must equal rows x cols x packing for each dtype it lists (it may list
    fewer dtypes than the cells could run)."""
    missing = [d for d in macs if d not in packing]
    if missing:
        raise DerivedMismatch(f"macs_per_cycle.{missing[0]}", f"dtype {missing[0]!r} has no "
                              f"packing; expected a packing for every dtype in macs_per_cycle")
    for dtype, got in macs.items():
        expected = rows * cols * packing[dtype]
        if got != expected:
            raise DerivedMismatch(
                f"macs_per_cycle.{dtype}", f"got {got!r}; expected rows x cols x packing = "
                f"{rows} x {cols} x {_packing_text(packing[dtype])} = {expected:g}")


def _check_plausible_packing(macs: dict[str, int], rows: int, cols: int) -> None:
    """Without a stated packing, each rate must still be a whole number of products per
    cell per cycle, or one product in a whole number of passes (catches most edits of
    rows or cols that forget the rates; state `packing` to catch all)."""
    cells = rows * cols
    for dtype, got in macs.items():
        ratio = Fraction(got, cells)
        whole = ratio.denominator == 1 and ratio.numerator <= MAX_PACKING
        passes = ratio.numerator == 1 and ratio.denominator <= MAX_PACKING
        if not (whole or passes):
            raise DerivedMismatch(
                f"macs_per_cycle.{dtype}", f"got {got!r}; expected rows x cols x packing = "
                f"{rows} x {cols} "
                f"x p with p a whole number of products per cell per cycle (1..{MAX_PACKING}) "
                f"or 1/passes, e.g. {cells} at p = 1; state `packing` to have it derived")


class VectorUnit(_Spec):
    lanes: _count(MAX_LANES)  # elementwise fp32 operations per cycle per core
    # transcendental (exp, rsqrt, recip) results per cycle per core; None = full lane rate
    special_function_lanes: _count(MAX_LANES) | None = None
    ops: tuple[Literal[VECTOR_OPS], ...]  # type: ignore[valid-type]
    dtypes: tuple[DType, ...]


class LocalSram(_Spec):
    size_bytes: Bytes = Field(alias="size")
    bytes_per_cycle: _count(MAX_BYTES_PER_CYCLE)


class Core(_Spec):
    count: _count(MAX_CORES)
    # cores on the die(s), enabled or not (GH100: 144, of which H100 SXM enables 132);
    # None = count. Silicon area and harvesting yield use it (chipforge.cost)
    physical_count: _count(MAX_CORES) | None = None
    matrix_units: tuple[MatrixUnit, ...] = Field(min_length=1)
    vector_unit: VectorUnit
    local_sram: LocalSram
    # register file per core (a GPU SM's 256 KB); None = none beyond local_sram
    register_file_bytes: Bytes | None = Field(default=None, alias="register_file")
    # a copy engine moves whole tiles between DRAM and local SRAM asynchronously (NVIDIA's
    # TMA, Ascend's MTE; a systolic core's DMA): a GEMM's output stores overlap its next
    # tile's loads and MMAs. False: threads copy (Ampere's cp.async), a CTA's epilogue
    # stores follow its main loop
    async_bulk_copy: StrictBool = True

    @field_validator("physical_count")
    @classmethod
    def _at_least_enabled(cls, value: int | None, info: ValidationInfo) -> int | None:
        enabled = info.data.get("count")
        if value is not None and enabled is not None and value < enabled:
            raise ValueError(f"expected at least cores.count ({enabled}) physical cores")
        return value

    @property
    def physical(self) -> int:
        """Cores on the silicon, enabled or not."""
        return self.physical_count or self.count


class SharedBuffer(_Spec):
    name: str = "L2"
    size_bytes: Bytes = Field(alias="size")
    bandwidth_bytes_per_s: BytesPerS = Field(alias="bandwidth")
    # capacity on the silicon, enabled or not (full GH100: 60 MB); None = size
    physical_size_bytes: Bytes | None = Field(default=None, alias="physical_size")
    # the most one core reads from it per core clock, sustained (a GPU SM's L2 read rate,
    # as microbenchmarks measure it with every SM reading): the cores together may get
    # less than ``bandwidth``; None = no per-core limit
    core_read_bytes_per_cycle: Annotated[
        float, Field(gt=0, le=MAX_BYTES_PER_CYCLE, allow_inf_nan=False, strict=True)] | None = None


class OffChipMemory(_Spec):
    kind: Literal[MEMORY_KINDS]  # type: ignore[valid-type]
    stacks: Units  # HBM stacks, or LPDDR/GDDR channels (devices)
    capacity_bytes: Bytes = Field(alias="capacity")
    bandwidth_bytes_per_s: BytesPerS = Field(alias="bandwidth")
    # memory PHY sites on the die(s), used or not (GH100: 6, H100 SXM uses 5); None = stacks
    physical_stacks: Units | None = None


class Links(_Spec):
    count: Units
    bandwidth_bytes_per_s: BytesPerS = Field(alias="bandwidth")  # per link, both directions
    # the links' switch reduces in the network (NVLink SHARP: an all-reduce sends each
    # buffer once into the switch instead of around a ring)
    in_switch_reduction: StrictBool = False

    @property
    def total_bytes_per_s(self) -> float:
        return self.count * self.bandwidth_bytes_per_s


class ChipSpec(_Spec):
    name: str
    vendor: str
    kind: Literal["gpu", "accelerator"]
    description: str = ""
    process_node: Literal[PROCESS_NODES]  # type: ignore[valid-type]
    clock_hz: Hz = Field(alias="clock")  # the clock at which peak throughput is quoted
    tdp_w: Watts = Field(alias="tdp")
    die_area_mm2: Mm2 | None = Field(default=None, alias="die_area")  # logic dies, total
    launch_price_usd: Usd | None = Field(default=None, alias="launch_price")
    # the packaged chip's published total transistor count, all logic dies (B200: 208e9);
    # None = unpublished, and chipforge.cost models it
    transistor_count: Transistors | None = Field(default=None, alias="transistors")
    dies: Units = 1  # logic dies in the package (B200: 2); die_area is their total
    cores: Core
    shared_buffer: SharedBuffer
    memory: OffChipMemory
    links: Links
    # field path -> "source: ..." or "assumption: ..." for every number given with one
    sources: dict[str, str] = Field(default_factory=dict, exclude=True)
    _fingerprint: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _die_holds_its_sram(self) -> ChipSpec:
        """A stated die area cannot be smaller than its SRAM's bitcells alone (chipforge.cost
        predicts the full area; the spec layer checks the floor that needs no model)."""
        if self.die_area_mm2 is None:
            return self
        cores = self.cores
        sram_bytes = ((self.shared_buffer.physical_size_bytes or self.shared_buffer.size_bytes)
                      + cores.physical * cores.local_sram.size_bytes)
        floor_mm2 = sram_bytes * 8 * DENSEST_SRAM_BITCELL_UM2 / 1e6
        if self.die_area_mm2 < floor_mm2:
            raise DerivedMismatch(
                "die_area", f"got {self.die_area_mm2:g} mm2; expected at least "
                f"{floor_mm2:.0f} mm2, the bitcells alone of its {sram_bytes / 2**20:,.0f} MiB "
                f"of SRAM (shared buffer + local SRAM of {cores.physical} cores) at the "
                f"densest node (N2, {DENSEST_SRAM_BITCELL_UM2} um2 per bit)")
        return self

    @model_validator(mode="after")
    def _description_agrees(self) -> ChipSpec:
        for stated, actual in description_conflicts(self):
            raise DerivedMismatch("description", f"says {stated!r} but the spec has "
                                  f"{actual}; correct it, or leave description out to have "
                                  f"it generated")
        return self

    def model_post_init(self, context: object) -> None:
        if not self.description:  # generated from the fields, so it cannot disagree
            self.__dict__["description"] = generated_description(self)
        # specs key the estimate cache, so hashing must be cheap: hash the JSON once
        self.__pydantic_private__["_fingerprint"] = self.model_dump_json()

    def model_copy(self, *, update: dict[str, Any] | None = None,
                   deep: bool = False) -> ChipSpec:
        """A copy, re-fingerprinted: a copy with changed fields must not hit the estimate
        cache entries of the spec it was copied from."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__pydantic_private__["_fingerprint"] = copy.model_dump_json()
        return copy

    def __hash__(self) -> int:
        return hash(self._fingerprint)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChipSpec) and self._fingerprint == other._fingerprint

    # ---- derived figures -----------------------------------------------------------------
    def macs_per_cycle(self, dtype: str) -> int:
        """Dense MACs per cycle for the whole chip in ``dtype`` (0 if unsupported)."""
        per_core = sum(mu.count * mu.macs_per_cycle.get(dtype, 0)
                       for mu in self.cores.matrix_units)
        return self.cores.count * per_core

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s in ``dtype`` (one MAC = two FLOPs)."""
        return 2.0 * self.macs_per_cycle(dtype) * self.clock_hz

    def special_function_rate(self) -> float:
        """Transcendental results per second over all cores (exp, rsqrt, reciprocal)."""
        vu = self.cores.vector_unit
        return self.cores.count * (vu.special_function_lanes or vu.lanes) * self.clock_hz

    def vector_flops(self) -> float:
        """Peak elementwise fp32 operations per second over all cores."""
        return self.cores.count * self.cores.vector_unit.lanes * self.clock_hz

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        return tuple(d for d in DTYPES if self.macs_per_cycle(d) > 0)

    @property
    def hbm_bandwidth_bytes_per_s(self) -> float:
        return self.memory.bandwidth_bytes_per_s


# Facts a description may state, each read back against the fields: a pattern, and a
# function of (match, spec) giving what the spec has when it disagrees, else None.
_MEMORY_RE = "|".join(sorted(MEMORY_KINDS, key=len, reverse=True))
_SIZE_UNITS = {"MB": 1e6, "GB": 1e9, "MiB": 2.0**20, "GiB": 2.0**30}


def _near(stated: float, actual: float) -> bool:
    return abs(stated - actual) <= 0.02 * actual


def _cores_fact(m: re.Match, c: ChipSpec) -> str | None:
    return None if int(m[1]) == c.cores.count else f"cores.count {c.cores.count}"


def _array_fact(m: re.Match, c: ChipSpec) -> str | None:
    mu = c.cores.matrix_units[0]
    ok = (int(m[1]), int(m[2])) == (mu.rows, mu.cols)
    return None if ok else f"a {mu.rows}x{mu.cols} array (cores.matrix_units[0])"


def _units_fact(m: re.Match, c: ChipSpec) -> str | None:
    mu = c.cores.matrix_units[0]
    ok = int(m[1]) == mu.count and mu.kind.startswith(m[2])
    return None if ok else f"{mu.count} {mu.kind} unit(s) per core (cores.matrix_units[0])"


def _memory_fact(m: re.Match, c: ChipSpec) -> str | None:
    ok = m[1] == c.memory.kind and _near(float(m[2]) * 1e9, c.memory.capacity_bytes)
    return None if ok else f"{c.memory.kind} {c.memory.capacity_bytes / 1e9:g} GB (memory)"


def _sram_fact(m: re.Match, c: ChipSpec) -> str | None:
    size = c.shared_buffer.size_bytes
    ok = _near(float(m[1]) * _SIZE_UNITS[m[2]], size)
    return None if ok else f"{size / 2**20:g} MiB (shared_buffer.size)"


def _dies_fact(m: re.Match, c: ChipSpec) -> str | None:
    return None if int(m[1]) == c.dies else f"dies {c.dies}"


_FACTS = (
    (re.compile(r"\b(\d+) (?:cores|SMs|tiles|TensorCores?)\b"), _cores_fact),
    (re.compile(r"\b(\d+)x(\d+) array"), _array_fact),
    (re.compile(r"\b(\d+) (systolic|tensor)"), _units_fact),
    (re.compile(rf"\b({_MEMORY_RE}) (\d+(?:\.\d+)?) ?GB\b"), _memory_fact),
    (re.compile(r"\b(\d+(?:\.\d+)?) ?(MB|GB|MiB|GiB) (?:global )?SRAM\b"), _sram_fact),
    (re.compile(r"\b(\d+) dies\b"), _dies_fact),
)


def description_conflicts(chip: ChipSpec) -> list[tuple[str, str]]:
    """(what the description says, what the spec has) for each stated fact that is wrong."""
    out = []
    for pattern, check in _FACTS:
        match = pattern.search(chip.description)
        if match and (actual := check(match, chip)) is not None:
            out.append((match[0], actual))
    return out


def generated_description(chip: ChipSpec) -> str:
    """A one-line summary read from the fields (every fact in it is checkable)."""
    mu = chip.cores.matrix_units[0]
    parts = [f"{chip.cores.count} cores x {mu.count} {mu.kind} {mu.rows}x{mu.cols} array"]
    if chip.dies > 1:
        parts.insert(0, f"{chip.dies} dies")
    size = chip.shared_buffer.size_bytes
    unit = "GiB" if size >= 2**30 else "MiB"
    parts.append(f"{size / (2**30 if unit == 'GiB' else 2**20):.3g} {unit} SRAM")
    parts.append(f"{chip.memory.kind} {chip.memory.capacity_bytes / 1e9:.4g} GB")
    return ", ".join(parts)
