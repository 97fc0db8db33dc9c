"""The chip spec language: pydantic models validated from YAML.

GPUs and our accelerators share one language. On a GPU an SM is a core, its tensor cores
are its matrix units, shared memory is its local SRAM and L2 is the shared buffer.
Quantities carry units in YAML (``"1.41 GHz"``) and are stored in SI base units, with the
unit in the field name (``clock_hz``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
)

from chipforge.arch._units import parse_quantity

DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "int8")
DType = Literal["fp32", "tf32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "int8"]
BITS: dict[str, int] = {"fp32": 32, "tf32": 32, "bf16": 16, "fp16": 16,
                        "fp8_e4m3": 8, "fp8_e5m2": 8, "int8": 8}
VECTOR_OPS = ("add", "mul", "fma", "max", "sum", "exp", "rsqrt", "recip", "cast",
              "gelu", "silu", "relu", "tanh", "gather")
# TSMC-class nodes the energy and (later) area tables cover; 4N/4NP are NVIDIA's N4 variants
PROCESS_NODES = ("N16", "N12", "N7", "N6", "N5", "4N", "N4", "4NP", "N3", "N2")
MEMORY_KINDS = ("HBM2e", "HBM3", "HBM3e", "LPDDR5", "LPDDR5X", "GDDR6", "GDDR7", "DDR5")


def _quantity(dimension: str):
    """A positive quantity read from ``"<number> <unit>"``, stored in SI base units."""

    def check(value: object, info: ValidationInfo) -> float:
        # derive_chip re-validates a dumped spec whose quantities are already SI numbers
        si = bool(info.context and info.context.get("si_numbers"))
        if si and isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            number = parse_quantity(value, dimension)
        if number <= 0:
            raise ValueError(f"expected a positive {dimension}")
        return number

    return BeforeValidator(check)


Hz = Annotated[float, _quantity("frequency")]
Watts = Annotated[float, _quantity("power")]
Mm2 = Annotated[float, _quantity("area")]
Bytes = Annotated[float, _quantity("size")]
BytesPerS = Annotated[float, _quantity("bandwidth")]
Usd = Annotated[float, _quantity("money")]
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
PositiveFloat = Annotated[float, Field(gt=0)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatrixUnit(_Spec):
    """A systolic array or a group of tensor cores."""

    kind: Literal["systolic", "tensor_core"]
    count: PositiveInt = 1  # units per core
    rows: PositiveInt  # array shape; for tensor cores the native MMA tile
    cols: PositiveInt
    dataflows: tuple[Literal["ws", "os"], ...] = ("ws",)  # systolic schedules supported
    macs_per_cycle: dict[DType, PositiveInt]  # dense MACs per cycle per unit, per dtype


class VectorUnit(_Spec):
    lanes: PositiveInt  # elementwise fp32 operations per cycle per core
    # transcendental (exp, rsqrt, recip) results per cycle per core; None = full lane rate
    special_function_lanes: PositiveInt | None = None
    ops: tuple[Literal[VECTOR_OPS], ...]  # type: ignore[valid-type]
    dtypes: tuple[DType, ...]


class LocalSram(_Spec):
    size_bytes: Bytes = Field(alias="size")
    bytes_per_cycle: PositiveInt


class Core(_Spec):
    count: PositiveInt
    # cores on the die(s), enabled or not (GH100: 144, of which H100 SXM enables 132);
    # None = count. Silicon area and harvesting yield use it (chipforge.cost)
    physical_count: PositiveInt | None = None
    matrix_units: tuple[MatrixUnit, ...] = Field(min_length=1)
    vector_unit: VectorUnit
    local_sram: LocalSram
    # register file per core (a GPU SM's 256 KB); None = none beyond local_sram
    register_file_bytes: Bytes | None = Field(default=None, alias="register_file")

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


class OffChipMemory(_Spec):
    kind: Literal[MEMORY_KINDS]  # type: ignore[valid-type]
    stacks: PositiveInt  # HBM stacks, or LPDDR/GDDR channels (devices)
    capacity_bytes: Bytes = Field(alias="capacity")
    bandwidth_bytes_per_s: BytesPerS = Field(alias="bandwidth")
    # memory PHY sites on the die(s), used or not (GH100: 6, H100 SXM uses 5); None = stacks
    physical_stacks: PositiveInt | None = None


class Links(_Spec):
    count: PositiveInt
    bandwidth_bytes_per_s: BytesPerS = Field(alias="bandwidth")  # per link, both directions

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
    dies: PositiveInt = 1  # logic dies in the package (B200: 2); die_area is their total
    cores: Core
    shared_buffer: SharedBuffer
    memory: OffChipMemory
    links: Links
    # field path -> "source: ..." or "assumption: ..." for every number given with one
    sources: dict[str, str] = Field(default_factory=dict, exclude=True)
    _fingerprint: str = PrivateAttr(default="")

    def model_post_init(self, context: object) -> None:
        # specs key the estimate cache, so hashing must be cheap: hash the JSON once
        self.__pydantic_private__["_fingerprint"] = self.model_dump_json()

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
