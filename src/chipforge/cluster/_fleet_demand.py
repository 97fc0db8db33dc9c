"""A year's demand for the fleet plan, and the options to meet it, from YAML (docs/cluster.md,
"The fleet plan"). Every entry carries a ``source``: where its numbers come from, or the
assumption and its reasoning.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chipforge.arch import parse_yaml, read_text
from chipforge.errors import ClusterError

DEFAULT_DEMAND = "chipforge/cluster/data/demand.yaml"
HOURS_PER_DAY = 24


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    source: str = Field(min_length=1)  # source: ... or assumption: ... with the reasoning


class Slo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    ttft_s: float = Field(default=2.0, gt=0)
    tpot_s: float = Field(default=0.05, gt=0)
    percentile: float = Field(default=90.0, gt=0, lt=100)


class PretrainingRun(_Entry):
    name: str = Field(min_length=1)
    model: str = Field(min_length=1)  # catalog name (chipforge.workloads) or HF config path
    tokens: float = Field(gt=0)
    seq_len: int = Field(default=8192, gt=0)
    global_batch_tokens: float = Field(default=16e6, gt=0)
    deadline_days: float = Field(gt=0)


class ServingTraffic(_Entry):
    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    mean_rate_per_s: float = Field(gt=0)  # requests per second, averaged over the day
    peak_to_mean: float | None = Field(default=None, ge=1)
    hourly_profile: tuple[float, ...] | None = None  # 24 relative rates, hour 0..23
    input_len: int = Field(gt=0)
    output_len: int = Field(gt=0)
    slo: Slo = Slo()
    start_day: float = Field(default=0.0, ge=0)

    @field_validator("hourly_profile")
    @classmethod
    def _profile(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is None:
            return v
        if len(v) != HOURS_PER_DAY or any(not math.isfinite(x) or x < 0 for x in v) or \
                not sum(v) > 0:
            raise ValueError(f"expected {HOURS_PER_DAY} non-negative relative rates with a "
                             "positive sum")
        return v

    @model_validator(mode="after")
    def _one_shape(self) -> ServingTraffic:
        if (self.peak_to_mean is None) == (self.hourly_profile is None):
            raise ValueError("give exactly one of peak_to_mean and hourly_profile")
        return self

    @property
    def peak_over_mean(self) -> float:
        if self.hourly_profile is not None:
            mean = sum(self.hourly_profile) / HOURS_PER_DAY
            return max(self.hourly_profile) / mean
        return float(self.peak_to_mean or 1.0)

    @property
    def peak_rate_per_s(self) -> float:
        return self.mean_rate_per_s * self.peak_over_mean


class RecsysTraining(_Entry):
    name: str = Field(min_length=1)
    model: dict[str, Any] = Field(default_factory=dict)  # chipforge.workloads.dlrm arguments
    samples_per_day: float = Field(gt=0)  # samples trained per day, all retrains included
    start_day: float = Field(default=0.0, ge=0)


class RecsysInference(_Entry):
    name: str = Field(min_length=1)
    model: dict[str, Any] = Field(default_factory=dict)
    qps_peak: float = Field(gt=0)  # ranking requests per second at the peak
    items_per_query: int = Field(default=1, gt=0)  # candidates each request scores
    mean_to_peak: float = Field(gt=0, le=1)
    p99_s: float = Field(gt=0)
    start_day: float = Field(default=0.0, ge=0)


class BuyOption(_Entry):
    chip: str = Field(min_length=1)
    lead_time_months: float = Field(default=0.0, ge=0)
    price_per_chip_usd: float | None = Field(default=None, gt=0)  # None: the system's price
    max_chips: int | None = Field(default=None, ge=0)


class BuildOption(_Entry):
    chip: str = Field(min_length=1)
    nre_usd: float = Field(ge=0)
    lead_time_months: float = Field(ge=0)
    max_chips: int | None = Field(default=None, ge=0)


class OwnedChips(_Entry):
    chip: str = Field(min_length=1)
    chips: int = Field(gt=0)


class Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    buy: tuple[BuyOption, ...] = ()
    build: tuple[BuildOption, ...] = ()
    owned: tuple[OwnedChips, ...] = ()


class EconomicsEntry(_Entry):
    usd_per_kwh: float = Field(default=0.08, ge=0)
    pue: float = Field(default=1.2, ge=1)
    idle_fraction: float = Field(default=0.3, ge=0, le=1)


class Demand(BaseModel):
    """A year's demand and the options; day 0 is the first day of the demand year, which
    starts ``starts_in_months`` after the decision (lead times count from the decision)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1)
    description: str = ""
    starts_in_months: float = Field(default=0.0, ge=0)
    economics: EconomicsEntry | None = None
    options: Options
    pretraining: tuple[PretrainingRun, ...] = ()
    serving: tuple[ServingTraffic, ...] = ()
    recsys_training: tuple[RecsysTraining, ...] = ()
    recsys_inference: tuple[RecsysInference, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> Demand:
        names = [w.name for w in self.workloads]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"workload names must be unique; repeated: {', '.join(dup)}")
        if not names:
            raise ValueError("no workloads; expected at least one of pretraining, serving, "
                             "recsys_training, recsys_inference")
        if not (self.options.buy or self.options.build or self.options.owned):
            raise ValueError("no options; expected buy, build or owned chips")
        return self

    @property
    def workloads(self) -> tuple[Any, ...]:
        return (*self.pretraining, *self.serving, *self.recsys_training,
                *self.recsys_inference)


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ""
    for part in err["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    loc = loc or "<top level>"
    value = err.get("input")
    if err["type"] == "missing":
        return f"{loc}: missing required field"
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown field (value {value!r})"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg} (got {value!r})"


def demand_from(raw: Any, where: str) -> Demand:
    """A validated Demand from parsed YAML; errors name ``where``, the field and the value."""
    if not isinstance(raw, dict):
        raise ClusterError(f"{where}: expected a mapping with name, options and workloads "
                           f"(got {type(raw).__name__})")
    try:
        return Demand.model_validate(raw)
    except ValidationError as exc:
        raise ClusterError(f"{where}: {_describe(exc)}") from None


@cache
def _default() -> Demand:
    text = resources.files("chipforge.cluster").joinpath("data", "demand.yaml").read_text()
    return demand_from(parse_yaml(text, DEFAULT_DEMAND, ClusterError), DEFAULT_DEMAND)


def load_demand(path: str | Path | None = None) -> Demand:
    """The demand in the YAML file at ``path``; None: the shipped default
    (chipforge/cluster/data/demand.yaml)."""
    if path is None:
        return _default()
    where = str(path)
    text = read_text(path, where, "demand", ClusterError)
    return demand_from(parse_yaml(text, where, ClusterError), where)


Kind = Literal["pretraining", "serving", "recsys-training", "recsys-inference"]
