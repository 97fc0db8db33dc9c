"""The check: which rules bind a chip for a buyer, a fab and a date, and the verdict.

Two paths: buying a vendor's finished product (``chip.vendor`` is not ``chipforge``), to
which the licensing events and 3A090.a/.b apply; and having our own design fabricated
(vendor ``chipforge``), to which the foundry presumption, 3A090.a/.b (the fab's export of
the die) and 3A090.c (the HBM stacks) apply. Not legal advice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from chipforge.arch import ChipSpec
from chipforge.errors import ChipforgeError
from chipforge.legal._rules import (
    OUTCOMES,
    Clauses,
    Comparison,
    LegalError,
    Rule,
    load_context,
    load_rules,
)

NOT_LEGAL_ADVICE = ("Not legal advice: a model of published export rules as recorded in "
                    "chipforge/legal/data, for design-space exploration only.")
NOT_CONTROLLED = "not controlled"  # the tier string chipforge.cost.export_class uses
OWN_VENDOR = "chipforge"
# quantities whose relative margin means nothing (flags and calendar years)
_NO_MARGIN = ("has_hbm", "non_planar", "year")
_HINTS = {
    "tpp": "a TPP (chipforge.cost.export_class)",
    "pd": "a performance density: TPP over the logic die area (chipforge.cost.export_class)",
    "transistors": "a packaged transistor count (chipforge.cost.transistor_count, published "
                   "or modelled)",
    "memory_bw_density_gb_s_mm2": "a memory bandwidth density in GB/s per mm2 of package or "
                                  "stack (chipforge.cost.memory_bandwidth_density)",
}


@dataclass(frozen=True)
class Measured:
    """What a chip is measured by: chipforge.cost's figures (``cost_measure``), or a
    caller's own (``check(..., measure=...)``)."""
    tpp: float | None
    pd: float | None
    transistors: float | None = None
    transistor_source: str | None = None  # "published" or "modelled"
    memory_bw_density_gb_s_mm2: float | None = None


Measure = Callable[[ChipSpec], Measured]


def cost_measure(chip: ChipSpec) -> Measured:
    """chipforge.cost's figures: TPP and PD (export_class), the packaged transistor count
    (published, else modelled) and the memory bandwidth density. A figure cost cannot give
    is None, and the check then names the rule that needs it."""
    from chipforge.cost import export_class, memory_bandwidth_density, transistor_count

    ex = export_class(chip)
    try:
        count = transistor_count(chip)
        transistors, source = count.total, count.source
    except ChipforgeError:
        transistors, source = None, None
    try:
        density = memory_bandwidth_density(chip).gb_per_s_per_mm2
    except ChipforgeError:
        density = None
    return Measured(tpp=ex.tpp, pd=ex.pd, transistors=transistors, transistor_source=source,
                    memory_bw_density_gb_s_mm2=density)



@dataclass(frozen=True)
class RuleCheck:
    rule_id: str
    title: str
    provision: str
    effective: dt.date
    applies: bool  # the rule's scope (path, buyer, fab, vendor, product, node) matches
    quantity: str
    value: float | str | None
    threshold: str  # "tpp >= 4800", or "product in [h20]"
    margin: float | None  # signed, relative; positive on the binding side
    binds: bool
    outcome: str  # the rule's outcome when it binds, else "uncontrolled"
    citation: str | None
    reason: str
    exception: str | None = None  # the exception taken, if any
    licence_policy: str | None = None


@dataclass(frozen=True)
class LegalReport:
    chip: str
    vendor: str
    path: str  # "purchase" or "fabrication"
    as_of: dt.date
    buyer: str
    fab: str
    approved_designer: bool
    checks: tuple[RuleCheck, ...]
    verdict: str
    quantities: dict[str, float | None] = field(default_factory=dict)
    transistor_source: str | None = None
    scenario: str | None = None
    notice: str = NOT_LEGAL_ADVICE

    @property
    def binding(self) -> tuple[RuleCheck, ...]:
        return tuple(c for c in self.checks if c.binds)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["as_of"] = self.as_of.isoformat()
        for c in doc["checks"]:
            c["effective"] = c["effective"].isoformat()
        return doc


def parse_date(value: dt.date | str) -> dt.date:
    """A date from a ``date`` or an ISO string; anything else is a LegalError."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise LegalError(f"as_of {value!r} is not a date: expected YYYY-MM-DD") from None


def first_rule_date(rules: Iterable[Rule] | None = None) -> dt.date:
    return min(r.effective for r in (rules or load_rules()) if not r.assumption)


def _known(kind: str, name: str, known: Iterable[str]) -> None:
    names = sorted(known)
    if name not in names:
        raise LegalError(f"unknown {kind} {name!r}: expected one of {', '.join(names)} "
                         "(chipforge/legal/data/context.yaml)")


def interconnect_gb_s(chip: ChipSpec) -> float:
    """All links, both directions, in GB/s: the 2022 rule's transfer rate (a link's
    bandwidth counts both directions, arch Links)."""
    return chip.links.count * chip.links.bandwidth_bytes_per_s / 1e9


def tier_rules(day: dt.date) -> list[Rule]:
    """The 3A090 tier rules in force on ``day``, most controlled tier first."""
    return sorted((r for r in load_rules() if r.tier and not r.assumption and r.in_force(day)),
                  key=lambda r: r.tier or "")


def chip_quantities(chip: ChipSpec, measured: Measured, as_of: dt.date) -> dict[str, Any]:
    """Every quantity a rule may test, by name (None where the measure gave none)."""
    node = load_context().nodes.get(chip.process_node)
    return {
        "tpp": measured.tpp, "pd": measured.pd,
        "interconnect_gb_s": interconnect_gb_s(chip),
        "transistors": measured.transistors,
        "memory_bw_density_gb_s_mm2": measured.memory_bw_density_gb_s_mm2,
        "has_hbm": 1.0 if chip.memory.kind.startswith("HBM") else 0.0,
        "node_nm": node.nm if node else None,
        "non_planar": (1.0 if node.transistor != "planar" else 0.0) if node else None,
        "year": float(as_of.year),
    }


def _value(values: dict[str, Any], c: Comparison, rule: Rule, chip: ChipSpec) -> float:
    x = values.get(c.quantity)
    if x is not None:
        return float(x)
    if c.quantity in ("node_nm", "non_planar"):
        nodes = ", ".join(load_context().nodes)
        raise LegalError(f"rule {rule.id} tests the process node, but chip {chip.name!r} has "
                         f"node {chip.process_node!r}, which chipforge/legal/data/context.yaml "
                         f"does not list: expected one of {nodes}")
    raise LegalError(f"rule {rule.id} ({rule.provision}) tests {c.quantity}, but chip "
                     f"{chip.name!r} has none: expected {_HINTS.get(c.quantity, c.quantity)}")


def _margin(c: Comparison, x: float) -> float | None:
    return None if c.quantity in _NO_MARGIN else c.margin(x)


def _decide(clauses: Clauses, headline: str, value_of: Callable[[Comparison], float]
            ) -> tuple[bool, Comparison | None]:
    """Whether any clause holds, and the comparison to report: within the holding clause
    (or, when none holds, the clause whose other conditions hold) the headline comparison
    nearest its threshold; across clauses the one nearest to binding."""
    holds = [all(c.holds(value_of(c)) for c in cl) for cl in clauses]
    binds = any(holds)
    if binds:
        candidates = [cl for cl, h in zip(clauses, holds, strict=True) if h]
    else:
        ctx = [cl for cl in clauses
               if all(c.holds(value_of(c)) for c in cl if c.quantity != headline)]
        candidates = ctx or list(clauses)

    def tightest(cl: tuple[Comparison, ...]) -> tuple[float, Comparison | None]:
        comps = [c for c in cl if c.quantity == headline] or list(cl)
        scored = [(c.margin(value_of(c)) or 0.0, c) for c in comps]
        return min(scored, key=lambda s: s[0]) if scored else (0.0, None)

    best = max((tightest(cl) for cl in candidates), key=lambda s: s[0], default=(0.0, None))
    return binds, best[1]


def _scope(rule: Rule, chip: ChipSpec, path: str, buyer: str, fab: str) -> str | None:
    """Why the rule does not reach this transaction (None: it does)."""
    if path not in rule.paths:
        return f"applies to {' and '.join(rule.paths)}, not {path}"
    if buyer not in rule.buyers:
        return f"buyer {buyer} not in [{', '.join(rule.buyers)}]"
    home = load_context().vendors.get(chip.vendor)
    if path == "purchase" and home is not None and buyer in home.domestic_to:
        return f"no export: a {chip.vendor} part bought by a {buyer} buyer"
    if path == "fabrication" and rule.fabs is not None and fab not in rule.fabs:
        return f"fab {fab} not in [{', '.join(rule.fabs)}]"
    if rule.vendors is not None and chip.vendor not in rule.vendors:
        return f"vendor {chip.vendor} not in [{', '.join(rule.vendors)}]"
    if rule.products is not None and chip.name not in rule.products:
        return f"product {chip.name} not named ([{', '.join(rule.products)}])"
    return None


def _scope_check(rule: Rule, chip: ChipSpec, fab: str, applies: bool, reason: str,
                 binds: bool) -> RuleCheck:
    names = {"product": rule.products, "vendor": rule.vendors, "fab": rule.fabs}[rule.quantity]
    value = {"product": chip.name, "vendor": chip.vendor, "fab": fab}[rule.quantity]
    return _result(rule, applies, rule.quantity, value,
                   f"{rule.quantity} in [{', '.join(names or ('any',))}]", None, binds, reason)


def _result(rule: Rule, applies: bool, quantity: str, value: Any, threshold: str,
            margin: float | None, binds: bool, reason: str,
            exception: str | None = None) -> RuleCheck:
    return RuleCheck(
        rule_id=rule.id, title=rule.title, provision=rule.provision, effective=rule.effective,
        applies=applies, quantity=quantity, value=value, threshold=threshold, margin=margin,
        binds=binds, outcome=rule.outcome if binds else "uncontrolled",
        citation=rule.source.url, reason=reason, exception=exception,
        licence_policy=rule.licence_policy)


def check_rule(rule: Rule, chip: ChipSpec, values: dict[str, Any], *, path: str, buyer: str,
               fab: str, as_of: dt.date, approved_designer: bool) -> RuleCheck:
    """One rule against one transaction."""
    def value_of(c: Comparison) -> float:
        return _value(values, c, rule, chip)

    why_not = _scope(rule, chip, path, buyer, fab)
    if why_not is None and as_of < rule.binds_from:
        why_not = f"compliance required only from {rule.binds_from.isoformat()}"
    if why_not is None and rule.applies_if:
        inside, c = _decide(rule.applies_if, "", value_of)
        if not inside and c is not None:
            why_not = f"outside its scope: {c.quantity} {value_of(c):g} fails {c}"
    if not rule.test:
        return _scope_check(rule, chip, fab, why_not is None, why_not or "named", why_not is None)
    taken = next((e for e in rule.exceptions
                  if e.flag == "approved_designer" and approved_designer and e.test), None)
    clauses = taken.test if taken and taken.test else rule.test
    headline = taken.quantity if taken and taken.quantity else rule.quantity
    if why_not is not None:
        x = values.get(headline)
        return _result(rule, False, headline, x, "-", None, False, why_not)
    binds, c = _decide(clauses, headline, value_of)
    assert c is not None  # a rule with a test has a comparison to report
    x = value_of(c)
    note = f" (exception {taken.id}: {taken.conditions})" if taken else ""
    reason = ("binds: " if binds else "does not bind: ") + f"{c.quantity} {x:g} vs {c}" + note
    return _result(rule, True, c.quantity, x, str(c), _margin(c, x), binds, reason,
                   taken.id if taken else None)


def check(chip: ChipSpec, as_of: dt.date | str, buyer: str, fab: str,
          approved_designer: bool = False, *, measure: Measure | None = None,
          assumptions: Iterable[str] = (), scenario: str | None = None) -> LegalReport:
    """Every rule in force on ``as_of`` checked against buying (vendor chips) or fabricating
    (chipforge designs) ``chip`` for ``buyer`` at ``fab``; the verdict is the most severe
    outcome among the rules that bind. ``measure`` gives the chip's TPP, PD, transistor
    count and memory bandwidth density (see ``Measured``; default: chipforge.cost's);
    ``assumptions`` names hypothetical rule records (a scenario's) to include. Not legal
    advice."""
    day = parse_date(as_of)
    ctx = load_context()
    _known("buyer", buyer, ctx.buyers)
    _known("fab", fab, ctx.fabs)
    rules = load_rules()
    start = first_rule_date(rules)
    if day < start:
        raise LegalError(f"as_of {day.isoformat()} is before the first rule recorded "
                         f"({start.isoformat()}): expected a date on or after it")
    wanted = set(assumptions)
    _known_assumptions(wanted, rules)
    measured = (measure or cost_measure)(chip)
    values = chip_quantities(chip, measured, day)
    path = "purchase" if chip.vendor.lower() != OWN_VENDOR else "fabrication"
    checks = tuple(
        check_rule(r, chip, values, path=path, buyer=buyer, fab=fab, as_of=day,
                   approved_designer=approved_designer)
        for r in rules if r.in_force(day) and (not r.assumption or r.id in wanted))
    worst = max((OUTCOMES.index(c.outcome) for c in checks), default=0)
    return LegalReport(chip=chip.name, vendor=chip.vendor, path=path, as_of=day, buyer=buyer,
                       fab=fab, approved_designer=approved_designer, checks=checks,
                       verdict=OUTCOMES[worst], quantities=values,
                       transistor_source=measured.transistor_source, scenario=scenario)


def _known_assumptions(wanted: set[str], rules: Iterable[Rule]) -> None:
    known = {r.id for r in rules if r.assumption}
    unknown = sorted(wanted - known)
    if unknown:
        raise LegalError(f"unknown assumption rule {unknown[0]!r}: expected one of "
                         f"{', '.join(sorted(known))}")


def classify_3a090(tpp: float, pd: float, as_of: dt.date | str,
                   interconnect_gb_s: float | None = None) -> str:
    """The ECCN 3A090 tier ("3A090.a", "3A090.b" or "not controlled") of a (TPP, PD) pair
    under the rules in force on ``as_of``, from data/rules.yaml. The October 2022 rule also
    tests the bidirectional interconnect bandwidth; before it no tier existed."""
    day = parse_date(as_of)
    values = {"tpp": tpp, "pd": pd, "interconnect_gb_s": interconnect_gb_s}
    for rule in tier_rules(day):
        for clause in rule.test:
            if all(c.holds(_tier_value(values, c, rule)) for c in clause):
                return rule.tier or NOT_CONTROLLED
    return NOT_CONTROLLED


def _tier_value(values: dict[str, float | None], c: Comparison, rule: Rule) -> float:
    x = values.get(c.quantity)
    if x is None:
        raise LegalError(f"classify_3a090: rule {rule.id} ({rule.provision}) tests "
                         f"{c.quantity}: pass interconnect_gb_s= (all links, both directions, "
                         "GB/s)")
    return float(x)
