"""Bad input gets one LegalError naming what is wrong and what was expected; the scenario
API and classify_3a090 against the rule text."""

from __future__ import annotations

import datetime as dt

import pytest
from legalkit import fixed, own_chip

from chipforge.arch import load_chip
from chipforge.cost import export_class
from chipforge.errors import ChipforgeError
from chipforge.legal import (
    SCENARIOS,
    LegalError,
    Measured,
    check,
    check_scenario,
    classify_3a090,
    rules_from,
    scenario,
)


def test_legal_error_is_a_chipforge_error():
    assert issubclass(LegalError, ChipforgeError)


@pytest.mark.parametrize(("args", "message"), [
    (("2026-06-01", "mars", "tsmc"),
     "unknown buyer 'mars': expected one of china-hq, row, us "
     "(chipforge/legal/data/context.yaml)"),
    (("2026-06-01", "china-hq", "globalfoundries"),
     "unknown fab 'globalfoundries': expected one of intel, samsung, smic, tsmc "
     "(chipforge/legal/data/context.yaml)"),
    (("2026-13-01", "china-hq", "tsmc"),
     "as_of '2026-13-01' is not a date: expected YYYY-MM-DD"),
    (("2022-06-01", "china-hq", "tsmc"),
     "as_of 2022-06-01 is before the first rule recorded (2022-08-26): expected a date on "
     "or after it"),
])
def test_bad_arguments(args, message):
    with pytest.raises(LegalError) as err:
        check(load_chip("h20"), *args, measure=fixed())
    assert str(err.value) == message


def test_missing_transistor_count_names_the_rule_and_the_quantity():
    with pytest.raises(LegalError) as err:
        check(own_chip(), "2026-06-01", "china-hq", "tsmc", measure=fixed(transistors=None))
    assert str(err.value) == (
        "rule foundry-dd-2025 (ECCN 3A090.a presumption (90 FR 5298)) tests transistors, but "
        "chip 'forge-i1' has none: expected a packaged transistor count "
        "(chipforge.cost.transistor_count, published or modelled)")


def test_missing_memory_density_names_the_rule():
    with pytest.raises(LegalError, match=r"^rule 3a090c-2024 .* tests "
                       r"memory_bw_density_gb_s_mm2, but chip 'forge-i1' has none"):
        check(own_chip(), "2026-06-01", "china-hq", "tsmc", measure=fixed(density=None))


def test_a_quantity_no_applicable_rule_needs_may_be_missing():
    # a purchase never reaches the foundry or HBM rules, so no transistor count is needed
    report = check(load_chip("h20"), "2026-06-01", "china-hq", "tsmc",
                   measure=fixed(transistors=None, density=None))
    assert report.verdict == "licence required"


def test_check_measures_with_chipforge_cost_by_default():
    h20 = load_chip("h20")
    report = check(h20, "2026-06-01", "china-hq", "tsmc")
    # TPP from the spec: 78 SMs x 512 bf16 MAC/clk x 1.85 GHz... as cost.export_class has it
    assert report.quantities["tpp"] == pytest.approx(export_class(h20).tpp)
    assert report.quantities["transistors"] == 80e9  # published GH100 count, not modelled
    assert report.transistor_source == "published"


def test_unknown_assumption():
    with pytest.raises(LegalError) as err:
        check(load_chip("h20"), "2026-06-01", "china-hq", "tsmc", measure=fixed(),
              assumptions=["ban-everything"])
    assert str(err.value) == ("unknown assumption rule 'ban-everything': expected one of "
                              "full-ban-nvidia, full-ban-tsmc")


def test_unknown_scenario():
    with pytest.raises(LegalError) as err:
        scenario("tsmc-2030")
    assert str(err.value) == ("unknown scenario 'tsmc-2030': expected one of tsmc-2026, "
                              "tsmc-2026-approved, domestic-2026, full-ban "
                              "(chipforge/legal/data/scenarios.yaml)")


def test_a_malformed_rule_file_is_refused():
    raw = {"rules": [{"id": "x", "title": "t", "provision": "p", "effective": "2024-01-01",
                      "paths": ["purchase"], "buyers": ["china-hq"], "quantity": "tpp",
                      "test": [["tpp => 4800"]], "outcome": "licence required",
                      "source": {"document": "d", "url": "https://example.org", "quote": "q"}}]}
    with pytest.raises(LegalError, match=r"^rules\.yaml: rules\[0\]: test: Value error, "
                       r"comparison 'tpp => 4800': expected 'QUANTITY OP NUMBER'"):
        rules_from(raw, "rules.yaml")


# ---- scenarios ---------------------------------------------------------------------------

def test_the_required_scenarios_exist_with_their_terms():
    assert {"tsmc-2026", "tsmc-2026-approved", "domestic-2026", "full-ban"} <= set(SCENARIOS)
    day = dt.date(2026, 6, 1)
    s = scenario("tsmc-2026")
    assert (s.as_of, s.buyer, s.fab, s.approved_designer) == (day, "china-hq", "tsmc", False)
    a = scenario("tsmc-2026-approved")
    assert a.approved_designer and a.conditions
    d = scenario("domestic-2026")
    assert (d.fab, d.buyer) == ("smic", "china-hq") and "CXMT" in d.memory
    assert scenario("full-ban").assumptions == ("full-ban-nvidia", "full-ban-tsmc")


def test_check_scenario_takes_a_name_or_a_scenario():
    m = fixed(transistors=60e9, density=8.0)
    by_name = check_scenario(own_chip(), "tsmc-2026", measure=m)
    by_object = check_scenario(own_chip(), scenario("tsmc-2026"), measure=m)
    assert by_name == by_object
    assert by_name.scenario == "tsmc-2026"


# ---- classify_3a090 ----------------------------------------------------------------------

GRID = [(tpp, pd) for tpp in (1_599, 1_600, 2_399, 2_400, 4_799, 4_800, 15_832)
        for pd in (1.59, 1.6, 3.19, 3.2, 5.91, 5.92, 19.4)]


def _october_2023_text(tpp: float, pd: float) -> str:
    """ECCN 3A090.a/.b as 88 FR 73458 words them, transcribed by hand (the oracle)."""
    if tpp >= 4800 or (tpp >= 1600 and pd >= 5.92):
        return "3A090.a"
    if (2400 <= tpp < 4800 and 1.6 <= pd < 5.92) or (tpp >= 1600 and 3.2 <= pd < 5.92):
        return "3A090.b"
    return "not controlled"


@pytest.mark.parametrize(("tpp", "pd"), GRID)
def test_classify_3a090_agrees_with_the_2023_rule_text(tpp, pd):
    # the data must agree with the text on every corner of the bands
    assert classify_3a090(tpp, pd, "2026-06-01") == _october_2023_text(tpp, pd)


@pytest.mark.parametrize(("tpp", "pd", "link_gb_s", "tier"), [
    (4_990, 6.04, 600, "3A090.a"),          # A100: 12 x 50 GB/s NVLink
    (15_832, 19.4, 400, "not controlled"),  # H800: 8 NVLinks, under 600 GB/s
    (4_799, 19.4, 900, "not controlled"),
])
def test_classify_3a090_under_the_2022_rule(tpp, pd, link_gb_s, tier):
    assert classify_3a090(tpp, pd, dt.date(2023, 1, 1), interconnect_gb_s=link_gb_s) == tier


def test_classify_3a090_before_any_3a090_rule():
    assert classify_3a090(15_832, 19.4, "2022-09-01") == "not controlled"


def test_classify_3a090_2022_needs_the_interconnect():
    with pytest.raises(LegalError, match=r"^classify_3a090: rule 3a090-2022 .* tests "
                       r"interconnect_gb_s: pass interconnect_gb_s="):
        classify_3a090(4_990, 6.04, "2023-01-01")


def test_measured_is_frozen():
    m = Measured(tpp=1.0, pd=1.0)
    with pytest.raises(AttributeError):
        m.tpp = 2.0  # type: ignore[misc]
