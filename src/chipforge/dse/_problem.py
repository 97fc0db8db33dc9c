"""The DSE problem: design space, constraints, objectives and workloads, read from YAML.

The space file holds ``name``, ``base``, ``dtype_sets`` and ``params``; the ``objectives``,
``constraints``, ``workloads`` and ``references`` sections go in it or in a separate
constraints file (not in both). Everything is validated before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from chipforge.arch import PROCESS_NODES, ChipSpec, DType, load_chip
from chipforge.cost import MAX_TENSOR_PARALLEL, SERVING_DTYPES
from chipforge.dse._errors import DseError
from chipforge.dse._memory import MEMORY_TECHS
from chipforge.dse._objectives import OBJECTIVES
from chipforge.dse._params import Float, Int, Str
from chipforge.dse._yaml import describe, read_mapping
from chipforge.legal import OUTCOMES, SCENARIOS
from chipforge.workloads import USABLE_MEMORY_FRACTION, llm_config_names

PosFloat = Annotated[float, Field(gt=0, strict=True)]
PosInt = Annotated[int, Field(gt=0, strict=True)]
# source: the lithography reticle field is 26 mm x 33 mm = 858 mm2 (ASML NXT/NXE scanners;
# the limit NVIDIA cites for GH100's 814 mm2 die)
RETICLE_MM2 = 858.0
EXPORT_TIERS = ("not controlled", "3A090.b", "3A090.a")  # least to most controlled


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemoryOption(_Model):
    """One memory technology with the stack (device) counts and capacities to try."""

    kind: str
    stacks: Int
    capacity_per_stack_gb: Float | None = None  # default: the table's first capacity

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in MEMORY_TECHS:
            raise ValueError(f"got {kind!r}; expected one of {', '.join(MEMORY_TECHS)}")
        return kind

    @model_validator(mode="after")
    def _known_capacity(self) -> MemoryOption:
        # the options are listed as labels: keep their count bounded (a chip spec allows
        # at most 1024 stacks)
        most = self.stacks.max if not self.stacks.is_choice else max(self.stacks.choices)
        if most > 1024:
            raise ValueError(f"stacks: got {most!r}; expected at most 1024 stacks")
        known = [c / 1e9 for c in MEMORY_TECHS[self.kind].capacities_per_stack_bytes]
        caps = self.capacity_per_stack_gb
        if caps is not None and caps.count("capacity_per_stack_gb") > len(known):
            raise ValueError(f"capacity_per_stack_gb: got {caps.model_dump(exclude_none=True)!r}"
                             f"; expected some of {', '.join(f'{k:g}' for k in known)}")
        if self.capacity_per_stack_gb is not None:
            for cap in self.capacity_per_stack_gb.grid_values("capacity_per_stack_gb"):
                if not any(abs(cap - k) < 1e-9 for k in known):
                    raise ValueError(f"capacity_per_stack_gb: got {cap!r}; expected one of "
                                     f"{', '.join(f'{k:g}' for k in known)} for {self.kind} "
                                     "(the sourced table in chipforge/cost/_memory.py)")
        return self


class Params(_Model):
    """What may vary; a parameter left out keeps the base chip's value."""

    array_rows: Int | None = None
    array_cols: Int | None = None
    cores: Int | None = None
    matrix_units_per_core: Int | None = None
    clock_ghz: Float | None = None
    local_sram_mib: Float | None = None
    global_sram_mib: Float | None = None
    memory: list[MemoryOption] | None = Field(default=None, min_length=1)
    links: Int | None = None
    dtypes: Str | None = None
    tdp_w: Float | None = None
    process_node: Str | None = None

    @field_validator("process_node")
    @classmethod
    def _known_nodes(cls, param: Any) -> Any:
        for i, node in enumerate(param.choices):
            if node not in PROCESS_NODES:
                raise ValueError(f"choices[{i}]: got {node!r}; expected one of "
                                 f"{', '.join(PROCESS_NODES)}")
        return param


class Space(_Model):
    name: str
    base: str
    dtype_sets: dict[str, dict[DType, PosFloat]] = Field(default_factory=dict)
    params: Params

    @model_validator(mode="after")
    def _known_dtype_sets(self) -> Space:
        if self.params.dtypes is None:
            return self
        for i, name in enumerate(self.params.dtypes.choices):
            if name not in self.dtype_sets:
                known = ", ".join(self.dtype_sets) or "(none: add a dtype_sets mapping)"
                raise ValueError(f"params.dtypes.choices[{i}]: got {name!r}; expected one of "
                                 f"the dtype_sets: {known}")
        return self


class Constraints(_Model):
    max_die_area_mm2: PosFloat = RETICLE_MM2
    max_power_w: PosFloat | None = None  # average power on the workloads, besides <= TDP
    max_export_tier: Literal[EXPORT_TIERS] = "3A090.a"  # type: ignore[valid-type]
    # the tier is checked at PD x (1 + margin): PD rests on the modelled die area, whose
    # held-out error is +11.5% (H100, docs/silicon.md); TPP is exact (MACs x clock)
    export_pd_margin: Annotated[float, Field(ge=0, lt=1, strict=False)] = 0.0
    max_unit_cost_usd: PosFloat | None = None
    memory_fit: StrictBool = True  # weights + KV cache fit one serving group
    # a chipforge.legal scenario: every design is checked against the export rules it fixes
    # (verdict at most max_legal_verdict) and built only with what it allows (the fab's
    # nodes, HBM a domestic fab can source); the 3A090 tier is read on its date
    scenario: str | None = None
    max_legal_verdict: Literal[OUTCOMES] = "uncontrolled"  # type: ignore[valid-type]
    # the legal check counts a modelled transistor count x (1 + margin): the count model's
    # held-out error is 13.7% median (docs/silicon.md); a published count is exact
    transistor_margin: Annotated[float, Field(ge=0, lt=1, strict=False)] = 0.0

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, name: str | None) -> str | None:
        if name is not None and name not in SCENARIOS:
            raise ValueError(f"got {name!r}; expected one of {', '.join(SCENARIOS)} "
                             "(chipforge/legal/data/scenarios.yaml)")
        return name


class ServingWorkload(_Model):
    model: str
    batch: PosInt
    context_len: PosInt
    weight: PosFloat = 1.0  # share of the served tokens

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        if model.lower() not in llm_config_names():
            raise ValueError(f"got {model!r}; expected one of {', '.join(llm_config_names())}")
        return model


class TrainingWorkload(_Model):
    model: str = "Llama-3.1-70B"
    global_batch: PosInt = 32
    seq_len: PosInt = 4096
    micro_batch: PosInt = 1
    dtype: DType = "bf16"

    _known_model = field_validator("model")(ServingWorkload._known_model.__func__)


class ClusterWorkload(_Model):
    """The fleet-level objectives' workloads (issue 15; chipforge.cluster): a pre-training
    run on the fleet a fixed budget buys, and serving at a latency SLO."""

    # assumption: a 70B model on 15 T tokens, the scale of Llama 3.1 70B (Meta's model card:
    # 15T+ tokens), on a $1 B fleet (a tenth of a $10 B-a-year AI capex)
    pretrain_model: str = "Llama-3.1-70B"
    pretrain_tokens: PosFloat = 15e12
    seq_len: PosInt = 8192
    global_batch_tokens: PosFloat = 16e6  # source: Llama 3 paper Table 4: 16M tokens
    fleet_budget_usd: PosFloat = 1e9
    serve_model: str = "Llama-3.1-70B"
    # assumption: a chat mix, 1,024 prompt and 256 output tokens; the SLO of issue 15
    input_len: PosInt = 1024
    output_len: PosInt = 256
    slo_ttft_s: PosFloat = 2.0
    slo_tpot_s: PosFloat = 0.05
    slo_percentile: Annotated[float, Field(gt=0, lt=100)] = 90.0
    serve_requests: PosInt = 300  # simulated per tried rate; more is steadier and slower

    _known_models = field_validator("pretrain_model", "serve_model")(
        ServingWorkload._known_model.__func__)


def _default_serving() -> list[ServingWorkload]:
    # assumption: the suite's decode rows (chipforge.workloads._suite): 70B at batch 64 and
    # context 4096, 8B at batch 32 and context 2048, an equal share of the tokens each
    return [ServingWorkload(model="Llama-3.1-70B", batch=64, context_len=4096),
            ServingWorkload(model="Llama-3.1-8B", batch=32, context_len=2048)]


class Workloads(_Model):
    serving: list[ServingWorkload] = Field(default_factory=_default_serving, min_length=1)
    # the first of these the chip's matrix units support is the serving dtype; the defaults
    # are cost's and the workload memory model's, stated once there
    serving_dtypes: list[DType] = Field(default=list(SERVING_DTYPES), min_length=1)
    training: TrainingWorkload = Field(default_factory=TrainingWorkload)
    cluster: ClusterWorkload = Field(default_factory=ClusterWorkload)
    max_tp: PosInt = MAX_TENSOR_PARALLEL
    memory_usable_fraction: Annotated[float, Field(gt=0, le=1)] = USABLE_MEMORY_FRACTION


class Settings(_Model):
    """The sections that may sit in either file."""

    objectives: list[str] = Field(default=["serving_tokens_per_s_per_usd"], min_length=1)
    constraints: Constraints = Field(default_factory=Constraints)
    workloads: Workloads = Field(default_factory=Workloads)
    references: list[str] = Field(default_factory=list)  # catalog chips to plot alongside

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, names: list[str]) -> list[str]:
        for i, name in enumerate(names):
            if name not in OBJECTIVES:
                raise ValueError(f"[{i}]: got {name!r}; expected one of "
                                 f"{', '.join(OBJECTIVES)}")
        if len(set(names)) != len(names):
            raise ValueError(f"got {names!r}; expected each objective once")
        return names


class Problem(_Model):
    space: Space
    settings: Settings
    base_chip: ChipSpec
    space_file: str
    constraints_file: str | None = None


_SETTINGS_KEYS = ("objectives", "constraints", "workloads", "references")


def load_problem(space_path: str | Path, constraints_path: str | Path | None = None,
                 scenario: str | None = None) -> Problem:
    """Read and validate the space (and optional constraints) file; load the base chip.
    ``scenario`` (a chipforge.legal scenario) replaces the files' constraints.scenario."""
    space_path = Path(space_path)
    raw = read_mapping(space_path, "design space")
    own = {k: raw.pop(k) for k in _SETTINGS_KEYS if k in raw}
    raw.setdefault("name", space_path.stem)
    space = _validate(Space, raw, str(space_path))
    settings = _validate(Settings, own, str(space_path))
    if constraints_path is not None:
        extra = read_mapping(Path(constraints_path), "constraints")
        for key in extra:
            if key in own:
                raise DseError(f"{constraints_path}: {key}: given in both {space_path} and "
                               f"{constraints_path}; expected it in one file")
        more = _validate(Settings, extra, str(constraints_path))
        settings = Settings.model_validate(
            {**{k: getattr(settings, k) for k in own}, **{k: getattr(more, k) for k in extra}})
    if scenario is not None:
        constraints = _validate(Constraints, {**settings.constraints.model_dump(),
                                              "scenario": scenario}, "--scenario")
        settings = settings.model_copy(update={"constraints": constraints})
    base = _base_chip(space.base, space_path)
    return Problem(space=space, settings=settings, base_chip=base, space_file=str(space_path),
                   constraints_file=None if constraints_path is None else str(constraints_path))


def _validate(model: type[BaseModel], raw: dict, where: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise DseError(describe(exc, where)) from None


def _base_chip(base: str, space_path: Path) -> ChipSpec:
    relative = space_path.parent / base
    if base.endswith((".yaml", ".yml")) and relative.exists():
        return load_chip(relative)
    return load_chip(base)
