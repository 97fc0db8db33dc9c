"""Export rules as dated, cited data, and the check of a chip against them (docs/legal.md).

``check(chip, as_of, buyer, fab, approved_designer, measure=...)`` tests every rule in force
on a date (ECCN 3A090 of 2022 and 2023, 3A090.c HBM, the January 2025 foundry presumption,
per-product licensing events) and gives a verdict: uncontrolled, licence required,
presumed controlled or prohibited. ``check_scenario`` does so under a named scenario;
``classify_3a090`` gives the 3A090 tier of a (TPP, PD) pair on a date. Every threshold is in
``legal/data/rules.yaml``. Not legal advice.
"""

from chipforge.legal._check import (
    NOT_CONTROLLED,
    NOT_LEGAL_ADVICE,
    LegalReport,
    Measure,
    Measured,
    RuleCheck,
    check,
    check_rule,
    chip_quantities,
    classify_3a090,
    cost_measure,
    interconnect_gb_s,
)
from chipforge.legal._rules import (
    OUTCOMES,
    LegalError,
    Rule,
    Scenario,
    format_quantity,
    load_context,
    load_rules,
    rules_from,
)
from chipforge.legal._scenarios import SCENARIOS, check_scenario, scenario
from chipforge.legal._supply import supply_problems
from chipforge.legal._tier import (
    DEFAULT_SCENARIO,
    default_as_of,
    explain_3a090,
    export_tier,
    tier_limits,
)

__all__ = ["DEFAULT_SCENARIO", "NOT_CONTROLLED", "NOT_LEGAL_ADVICE", "OUTCOMES", "SCENARIOS",
           "LegalError",
           "LegalReport", "Measure", "Measured", "Rule", "RuleCheck", "Scenario",
           "check", "check_rule", "check_scenario", "chip_quantities", "classify_3a090",
           "cost_measure", "default_as_of", "explain_3a090", "export_tier", "format_quantity",
           "interconnect_gb_s", "tier_limits",
           "load_context", "load_rules", "rules_from", "scenario", "supply_problems"]
