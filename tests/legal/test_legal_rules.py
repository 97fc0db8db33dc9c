"""Every rule record shown binding and not binding on a constructed chip.

Oracle: the rule text quoted in src/chipforge/legal/data/rules.yaml (thresholds, dates,
scope). Measures are constructed (``fixed``) so that each case sits on a chosen side of a
threshold; interconnect, HBM and node come from the (derived) spec itself.
"""

from __future__ import annotations

import datetime as dt

import pytest
from legalkit import fixed, own_chip

from chipforge.arch import derive_chip, load_chip
from chipforge.legal import check, check_rule, chip_quantities, load_rules

RULES = {r.id: r for r in load_rules()}


def _rule(report, rule_id):
    return next(c for c in report.checks if c.rule_id == rule_id)


# ---- 3A090 (October 2022): TPP >= 4800 and bidirectional interconnect >= 600 GB/s --------

@pytest.mark.parametrize(("links", "binds"), [
    (12, True),   # 12 x 50 GB/s = 600 GB/s: at the threshold ("or more")
    (8, False),   # the H800's 8 links: 400 GB/s < 600, the reason the H800 was designed so
])
def test_2022_rule_tests_tpp_with_interconnect(links, binds):
    chip = derive_chip(load_chip("h800-sxm"), {"links": {"count": links}})
    report = check(chip, "2023-01-01", "china-hq", "tsmc", measure=fixed(tpp=15_832, pd=19.4))
    c = _rule(report, "3a090-2022")
    assert c.binds is binds
    assert report.quantities["interconnect_gb_s"] == pytest.approx(links * 50)


def test_2022_rule_needs_the_tpp_too():
    chip = derive_chip(load_chip("h800-sxm"), {"links": {"count": 18}})  # 900 GB/s
    report = check(chip, "2023-01-01", "china-hq", "tsmc", measure=fixed(tpp=4_799, pd=19.4))
    c = _rule(report, "3a090-2022")
    assert not c.binds
    assert c.threshold == "tpp >= 4800"
    assert c.margin == pytest.approx((4_799 - 4_800) / 4_800)


def test_2022_rule_is_superseded_on_17_november_2023():
    # "This rule is effective November 17, 2023" (88 FR 73458): the day before, the 2022
    # text is the one in force; from that day, 3A090.a/.b
    a100 = load_chip("a100-sxm")
    before = check(a100, "2023-11-16", "china-hq", "tsmc", measure=fixed(tpp=4_990, pd=6.04))
    on = check(a100, "2023-11-17", "china-hq", "tsmc", measure=fixed(tpp=4_990, pd=6.04))
    ids = ({c.rule_id for c in before.checks}, {c.rule_id for c in on.checks})
    assert "3a090-2022" in ids[0] and "3a090a-2023" not in ids[0]
    assert "3a090-2022" not in ids[1] and "3a090a-2023" in ids[1]


# ---- 3A090.a (October 2023): TPP >= 4800, or TPP >= 1600 and PD >= 5.92 ------------------

@pytest.mark.parametrize(("tpp", "pd", "binds"), [
    (4_800, 1.0, True),     # first prong at its threshold
    (4_799, 1.0, False),
    (1_600, 5.92, True),    # second prong at both thresholds
    (1_600, 5.91, False),
    (1_599, 10.0, False),
])
def test_3a090a_2023(tpp, pd, binds):
    report = check(load_chip("h20"), "2024-06-01", "china-hq", "tsmc", measure=fixed(tpp, pd))
    assert _rule(report, "3a090a-2023").binds is binds


def test_3a090a_reaches_china_hq_buyers_only():
    report = check(load_chip("h100-sxm"), "2024-06-01", "us", "tsmc",
                   measure=fixed(tpp=15_832, pd=19.4))
    c = _rule(report, "3a090a-2023")
    assert (c.applies, c.binds) == (False, False)
    assert c.reason == "buyer us not in [china-hq]"


# ---- 3A090.b (October 2023) --------------------------------------------------------------

@pytest.mark.parametrize(("tpp", "pd", "binds"), [
    (2_400, 1.6, True),     # b.1 at its lower corners
    (2_399, 1.6, False),    # below b.1's TPP floor, and PD 1.6 < 3.2 misses b.2
    (4_799, 5.91, True),
    (1_600, 3.2, True),     # b.2 at its lower corners
    (1_600, 3.19, False),
    (2_368, 2.9, False),    # the H20: TPP under 2400 and PD under 3.2
])
def test_3a090b_2023(tpp, pd, binds):
    report = check(load_chip("h20"), "2024-06-01", "china-hq", "tsmc", measure=fixed(tpp, pd))
    assert _rule(report, "3a090b-2023").binds is binds


def test_3a090b_margin_is_relative_to_the_nearest_band_edge():
    # the H20: PD 2.9 against b.2's 3.2 (b.1 fails on TPP 2368 < 2400, so b.2 is the clause
    # whose other conditions hold): (2.9 - 3.2) / 3.2 = -9.4%
    report = check(load_chip("h20"), "2024-06-01", "china-hq", "tsmc",
                   measure=fixed(tpp=2_368, pd=2.9))
    c = _rule(report, "3a090b-2023")
    assert c.threshold == "pd >= 3.2"
    assert c.margin == pytest.approx((2.9 - 3.2) / 3.2)


# ---- 3A090.c (December 2024): HBM with memory bandwidth density > 2 GB/s/mm2 -------------

@pytest.mark.parametrize(("kind", "density", "binds"), [
    ("HBM3e", 2.01, True),
    ("HBM3e", 2.0, False),     # "greater than 2": the threshold itself is not controlled
    ("LPDDR5X", 3.0, False),   # not high bandwidth memory
])
def test_3a090c_hbm(kind, density, binds):
    chip = own_chip(memory={"kind": kind})
    report = check(chip, "2025-06-01", "china-hq", "tsmc", measure=fixed(density=density))
    assert _rule(report, "3a090c-2024").binds is binds


def test_3a090c_waits_for_its_compliance_date():
    # effective 2 Dec 2024; compliance for the HBM changes from 31 Dec 2024
    report = check(own_chip(), "2024-12-15", "china-hq", "tsmc", measure=fixed(density=8.0))
    c = _rule(report, "3a090c-2024")
    assert (c.applies, c.binds) == (False, False)
    assert c.reason == "compliance required only from 2024-12-31"


def test_3a090c_is_not_applied_to_a_vendor_purchase():
    report = check(load_chip("h20"), "2025-06-01", "china-hq", "tsmc",
                   measure=fixed(density=5.5))
    c = _rule(report, "3a090c-2024")
    assert (c.applies, c.binds) == (False, False)


# ---- foundry due diligence (January 2025) ------------------------------------------------

@pytest.mark.parametrize(("date", "kind", "transistors", "binds"), [
    ("2026-06-01", "HBM3e", 30e9, True),     # below 30 billion overcomes: 30e9 is not below
    ("2026-06-01", "HBM3e", 29.9e9, False),
    ("2026-06-01", "LPDDR5X", 34e9, True),   # no 35 billion relief before 2027
    ("2026-06-01", "LPDDR5X", 30e9, True),   # no HBM, 2026: still the 30 billion test
    ("2027-06-01", "LPDDR5X", 34e9, False),  # no HBM, completed in 2027: below 35 billion
    ("2027-06-01", "LPDDR5X", 35e9, True),
    ("2027-06-01", "HBM3e", 31e9, True),     # with HBM only the 30 billion test applies
    ("2028-06-01", "LPDDR5X", 34e9, True),   # reading: the text gives 2028 no 35 billion
    ("2028-06-01", "LPDDR5X", 29.9e9, False),
    ("2029-06-01", "LPDDR5X", 39e9, False),  # 2029 or thereafter: below 40 billion
    ("2029-06-01", "LPDDR5X", 40e9, True),
])
def test_foundry_presumption_thresholds(date, kind, transistors, binds):
    chip = own_chip(memory={"kind": kind})
    report = check(chip, date, "china-hq", "tsmc", measure=fixed(transistors=transistors))
    c = _rule(report, "foundry-dd-2025")
    assert c.binds is binds
    assert c.outcome == ("presumed controlled" if binds else "uncontrolled")


def test_foundry_presumption_waits_for_its_compliance_date():
    # effective 16 Jan 2025, compliance required from 31 Jan 2025
    report = check(own_chip(), "2025-01-20", "china-hq", "tsmc", measure=fixed(transistors=60e9))
    c = _rule(report, "foundry-dd-2025")
    assert (c.applies, c.binds) == (False, False)
    assert c.reason == "compliance required only from 2025-01-31"


def test_foundry_presumption_does_not_reach_a_domestic_fab():
    report = check(own_chip(), "2026-06-01", "china-hq", "smic", measure=fixed(transistors=60e9))
    c = _rule(report, "foundry-dd-2025")
    assert (c.applies, c.binds) == (False, False)
    assert c.reason == "fab smic not in [tsmc, samsung, intel]"


def test_foundry_presumption_spares_planar_nodes_above_16nm():
    # no spec node is above 16 nm, so the scope is tested on the quantities directly: a
    # planar 28 nm logic IC is outside "16/14 nanometer node or below, or non-planar"
    chip = own_chip()
    values = {**chip_quantities(chip, fixed(transistors=60e9)(chip), dt.date(2026, 6, 1)),
              "node_nm": 28.0, "non_planar": 0.0}
    c = check_rule(RULES["foundry-dd-2025"], chip, values, path="fabrication",
                   buyer="china-hq", fab="tsmc", as_of=dt.date(2026, 6, 1),
                   approved_designer=False)
    assert (c.applies, c.binds) == (False, False)
    assert c.reason.startswith("outside its scope: ")


@pytest.mark.parametrize(("tpp", "pd", "binds"), [
    (2_386, 2.88, False),  # forge-i1's figures: not 3A090.a, so the attestation overcomes
    (4_800, 2.88, True),   # a 3A090.a design stays controlled whatever the designer says
])
def test_approved_designer_exception_replaces_the_transistor_test(tpp, pd, binds):
    report = check(own_chip(), "2026-06-01", "china-hq", "tsmc", approved_designer=True,
                   measure=fixed(tpp=tpp, pd=pd, transistors=110e9))
    c = _rule(report, "foundry-dd-2025")
    assert c.binds is binds
    assert c.exception == "approved-ic-designer"
    assert c.quantity == "tpp"


# ---- AI diffusion rule (January 2025, rescinded before its compliance date) --------------

def test_ai_diffusion_rule_never_binds():
    h100 = load_chip("h100-sxm")
    report = check(h100, "2025-03-01", "row", "tsmc", measure=fixed(tpp=15_832, pd=19.4))
    c = _rule(report, "ai-diffusion-2025")
    assert (c.applies, c.binds) == (False, False)
    assert c.reason == "compliance required only from 2025-05-15"
    later = check(h100, "2025-05-14", "row", "tsmc", measure=fixed(tpp=15_832, pd=19.4))
    assert "ai-diffusion-2025" not in {c.rule_id for c in later.checks}
    assert later.verdict == "uncontrolled"


def test_ai_diffusion_test_would_bind_a_3a090a_chip_past_its_compliance_date():
    # the record's own test, taken out of its dates: it binds an H100-class part for a
    # Tier 2 buyer and not an H20-class one
    rule, chip = RULES["ai-diffusion-2025"], load_chip("h100-sxm")
    day = dt.date(2025, 5, 16)
    for tpp, pd, binds in ((15_832, 19.4, True), (2_368, 2.9, False)):
        values = chip_quantities(chip, fixed(tpp=tpp, pd=pd)(chip), day)
        c = check_rule(rule, chip, values, path="purchase", buyer="row", fab="tsmc",
                       as_of=day, approved_designer=False)
        assert c.binds is binds


# ---- licensing events: named products ----------------------------------------------------

@pytest.mark.parametrize(("rule_id", "date", "product", "binds"), [
    ("nvidia-a100-h100-2022", "2022-09-01", "a100-sxm", True),
    ("nvidia-a100-h100-2022", "2022-09-01", "h100-sxm", True),
    ("nvidia-a100-h100-2022", "2022-09-01", "h800-sxm", False),
    ("nvidia-h20-2025-04", "2025-05-01", "h20", True),
    ("nvidia-h20-2025-04", "2025-05-01", "h800-sxm", False),
    ("nvidia-h20-2025-07", "2025-08-01", "h20", True),
    ("nvidia-h20-2025-07", "2025-08-01", "h100-sxm", False),
    ("nvidia-h200-2025-12", "2025-12-20", "h200-sxm", True),
    ("nvidia-h200-2025-12", "2025-12-20", "h20", False),
    ("h200-case-by-case-2026", "2026-02-01", "h200-sxm", True),
    ("h200-case-by-case-2026", "2026-02-01", "b200", False),
])
def test_licensing_events_name_their_products(rule_id, date, product, binds):
    report = check(load_chip(product), date, "china-hq", "tsmc", measure=fixed())
    c = _rule(report, rule_id)
    assert c.binds is binds
    assert c.outcome == ("licence required" if binds else "uncontrolled")
    assert c.citation == RULES[rule_id].source.url


def test_h20_april_letter_gives_way_to_the_july_licences():
    before = check(load_chip("h20"), "2025-07-13", "china-hq", "tsmc", measure=fixed())
    after = check(load_chip("h20"), "2025-07-14", "china-hq", "tsmc", measure=fixed())
    assert [c.rule_id for c in before.binding] == ["nvidia-h20-2025-04"]
    assert [c.rule_id for c in after.binding] == ["nvidia-h20-2025-07"]


def test_licensing_events_reach_china_hq_buyers_only():
    report = check(load_chip("h20"), "2025-05-01", "us", "tsmc", measure=fixed())
    assert not _rule(report, "nvidia-h20-2025-04").binds


# ---- GP10 guidance (May 2025): PRC-made 3A090 ICs --------------------------------------

@pytest.mark.parametrize(("buyer", "tpp", "pd", "binds"), [
    ("us", 5_662, 16.4, True),     # Ascend 910B-class: 3A090.a by TPP
    ("row", 2_400, 1.6, True),     # a .b-class PRC part is a PRC 3A090 IC too
    ("us", 1_000, 1.0, False),     # below both tiers: not a 3A090 IC
])
def test_gp10_guidance_on_prc_3a090_ics(buyer, tpp, pd, binds):
    report = check(load_chip("ascend-910b"), "2026-06-01", buyer, "tsmc",
                   measure=fixed(tpp=tpp, pd=pd))
    c = _rule(report, "gp10-prc-3a090-2025")
    assert c.binds is binds
    assert c.outcome == ("prohibited" if binds else "uncontrolled")


def test_a_domestic_purchase_is_no_export():
    # a China-HQ buyer buying Huawei's Ascend at home: 3A090 reaches exports, not this
    report = check(load_chip("ascend-910b"), "2026-06-01", "china-hq", "tsmc",
                   measure=fixed(tpp=5_662, pd=16.4))
    c = _rule(report, "3a090a-2023")
    assert (c.applies, c.binds) == (False, False)
    assert c.reason == "no export: a Huawei part bought by a china-hq buyer"
    assert report.verdict == "uncontrolled"


# ---- scenario assumptions ----------------------------------------------------------------

@pytest.mark.parametrize(("chip", "fab", "binds"), [
    ("h20", "tsmc", True),           # NVIDIA: no purchases at all
    ("ascend-910b", "tsmc", False),  # Huawei is not NVIDIA
])
def test_full_ban_nvidia(chip, fab, binds):
    report = check(load_chip(chip), "2026-06-01", "china-hq", fab, measure=fixed(),
                   assumptions=["full-ban-nvidia"])
    c = _rule(report, "full-ban-nvidia")
    assert c.binds is binds
    assert c.outcome == ("prohibited" if binds else "uncontrolled")


@pytest.mark.parametrize(("fab", "binds"), [("tsmc", True), ("samsung", False)])
def test_full_ban_tsmc(fab, binds):
    report = check(own_chip(), "2026-06-01", "china-hq", fab, measure=fixed(),
                   assumptions=["full-ban-tsmc"])
    assert _rule(report, "full-ban-tsmc").binds is binds


def test_assumptions_stay_out_unless_named():
    report = check(load_chip("h20"), "2026-06-01", "china-hq", "tsmc", measure=fixed())
    assert not {"full-ban-nvidia", "full-ban-tsmc"} & {c.rule_id for c in report.checks}


def test_every_rule_is_cited_and_every_real_rule_quoted():
    for rule in RULES.values():
        assert rule.source.quote.strip()
        assert rule.assumption or rule.source.url.startswith("http")
