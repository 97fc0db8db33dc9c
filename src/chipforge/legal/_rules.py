"""The rule, scenario and context records, validated from the YAML in ``legal/data``.

Every threshold lives in ``data/rules.yaml``; this module only gives the records their
shape. Comparisons are written ``"QUANTITY OP NUMBER"`` (``"tpp >= 4800"``).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chipforge.arch import parse_yaml
from chipforge.errors import ChipforgeError


class LegalError(ChipforgeError):
    """A legal check that cannot be made: unknown buyer, fab, scenario or date, a chip
    missing a quantity a rule tests, or a rule file that does not validate."""


OUTCOMES = ("uncontrolled", "licence required", "presumed controlled", "prohibited")
Outcome = Literal["uncontrolled", "licence required", "presumed controlled", "prohibited"]
QUANTITIES = ("tpp", "pd", "interconnect_gb_s", "transistors", "memory_bw_density_gb_s_mm2",
              "has_hbm", "node_nm", "non_planar", "year")
# headline quantities a licensing event reports instead of a number
SCOPE_QUANTITIES = ("product", "vendor", "fab")
OPS = (">=", ">", "<=", "<")
_COMPARISON = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def format_quantity(value: float | str | None) -> str:
    """A quantity as the rules write their thresholds: counts of a million or more in e9
    form (110.6e9), thousands as integers (15,831, never 1.583e+04), the rest to 4 digits."""
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    if abs(value) >= 1e6:
        return f"{value / 1e9:.4g}e9"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


class Comparison(_Record):
    quantity: str
    op: Literal[">=", ">", "<=", "<"]
    value: float

    def holds(self, x: float) -> bool:
        return {">=": x >= self.value, ">": x > self.value,
                "<=": x <= self.value, "<": x < self.value}[self.op]

    def margin(self, x: float) -> float | None:
        """Signed relative distance from the threshold, positive when the comparison holds
        (None at a zero threshold)."""
        if self.value == 0:
            return None
        rel = (x - self.value) / abs(self.value)
        return rel if self.op in (">=", ">") else -rel

    def __str__(self) -> str:
        v = self.value
        shown = f"{v / 1e9:g}e9" if abs(v) >= 1e6 else f"{v:g}"
        return f"{self.quantity} {self.op} {shown}"


def parse_comparison(text: str) -> Comparison:
    m = _COMPARISON.match(text) if isinstance(text, str) else None
    if not m or m.group(1) not in QUANTITIES:
        raise ValueError(f"comparison {text!r}: expected 'QUANTITY OP NUMBER' with QUANTITY one "
                         f"of {', '.join(QUANTITIES)} and OP one of {', '.join(OPS)}")
    return Comparison(quantity=m.group(1), op=m.group(2), value=float(m.group(3)))


Clauses = tuple[tuple[Comparison, ...], ...]


def _clauses(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        return value
    return tuple(tuple(parse_comparison(c) if isinstance(c, str) else c for c in clause)
                 for clause in value)


class Source(_Record):
    document: str
    url: str | None
    quote: str
    also: str | None = None


class RuleException(_Record):
    """An exception to a rule: who may take it, on what conditions, and (when ``flag`` names
    a check() argument) the test that replaces the rule's while it is taken."""
    id: str
    who: str
    conditions: str
    flag: Literal["approved_designer"] | None = None
    quantity: str | None = None
    test: Clauses | None = None

    _parse = field_validator("test", mode="before")(_clauses)


class Rule(_Record):
    id: str
    title: str
    provision: str
    tier: str | None = None  # the 3A090 tier the rule defines, for classify_3a090
    effective: dt.date
    compliance: dt.date | None = None
    ended: dt.date | None = None
    ended_by: str | None = None
    assumption: bool = False
    paths: tuple[Literal["purchase", "fabrication"], ...] = Field(min_length=1)
    buyers: tuple[str, ...] = Field(min_length=1)
    fabs: tuple[str, ...] | None = None  # fabrication path only; None: any fab
    vendors: tuple[str, ...] | None = None
    products: tuple[str, ...] | None = None
    quantity: str
    applies_if: Clauses | None = None
    test: Clauses
    outcome: Outcome
    licence_policy: str | None = None
    exceptions: tuple[RuleException, ...] = ()
    source: Source
    reading: str | None = None

    _parse = field_validator("applies_if", "test", mode="before")(_clauses)

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.outcome == "uncontrolled":
            raise ValueError("outcome 'uncontrolled' is what a rule that does not bind gives")
        if self.ended is not None and self.ended <= self.effective:
            raise ValueError(f"ended {self.ended} is not after effective {self.effective}")
        if self.quantity not in QUANTITIES + SCOPE_QUANTITIES:
            raise ValueError(f"quantity {self.quantity!r}: expected one of "
                             f"{', '.join(QUANTITIES + SCOPE_QUANTITIES)}")
        if not self.test and self.quantity not in SCOPE_QUANTITIES:
            raise ValueError("a rule with an empty test reports product, vendor or fab")
        if self.source.url is None and not self.assumption:
            raise ValueError("a rule that is not an assumption needs a source url")
        return self

    @property
    def binds_from(self) -> dt.date:
        return max(self.effective, self.compliance or self.effective)

    def in_force(self, on: dt.date) -> bool:
        return self.effective <= on and (self.ended is None or on < self.ended)


class Buyer(_Record):
    description: str
    source: str | None = None


class Fab(_Record):
    name: str
    domestic_to: tuple[str, ...] = ()
    description: str
    nodes: tuple[str, ...] | None = None  # the spec nodes it makes; None: not recorded
    nodes_source: str | None = None


class Vendor(_Record):
    domestic_to: tuple[str, ...] = ()
    description: str


class Node(_Record):
    nm: float
    transistor: Literal["planar", "finfet", "gaa"]
    source: str


class Context(_Record):
    buyers: dict[str, Buyer]
    fabs: dict[str, Fab]
    vendors: dict[str, Vendor]
    nodes: dict[str, Node]


class Scenario(_Record):
    """A fixed date, buyer, fab and exception choice (data/scenarios.yaml)."""
    name: str
    description: str
    as_of: dt.date
    buyer: str
    fab: str
    approved_designer: bool = False
    conditions: tuple[str, ...] = ()
    memory: str | None = None
    notes: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()  # ids of assumption rules the scenario brings in


def _read(name: str) -> Any:
    text = resources.files("chipforge.legal").joinpath("data", name).read_text()
    return parse_yaml(text, f"chipforge/legal/data/{name}", LegalError)


def _validated(model: type[BaseModel], raw: Any, where: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        raise LegalError(f"{where}: {loc}: {e['msg']}") from None


def rules_from(raw: Any, where: str) -> tuple[Rule, ...]:
    """Validated rules from parsed YAML (``{"rules": [...]}``); ids must be unique."""
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise LegalError(f"{where}: expected a mapping with a 'rules' list")
    rules = tuple(_validated(Rule, r, f"{where}: rules[{i}]")
                  for i, r in enumerate(raw["rules"]))
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise LegalError(f"{where}: rule id {r.id!r} appears twice")
        seen.add(r.id)
    return rules


@cache
def load_rules() -> tuple[Rule, ...]:
    return rules_from(_read("rules.yaml"), "chipforge/legal/data/rules.yaml")


@cache
def load_context() -> Context:
    return _validated(Context, _read("context.yaml"), "chipforge/legal/data/context.yaml")


@cache
def load_scenarios() -> dict[str, Scenario]:
    raw = _read("scenarios.yaml")
    where = "chipforge/legal/data/scenarios.yaml"
    if not isinstance(raw, dict) or not isinstance(raw.get("scenarios"), dict):
        raise LegalError(f"{where}: expected a mapping with a 'scenarios' mapping")
    return {name: _validated(Scenario, {"name": name, **body}, f"{where}: {name}")
            for name, body in raw["scenarios"].items()}
