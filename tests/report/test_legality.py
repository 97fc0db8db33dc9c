"""The report's legality section: each chip's verdict under every scenario.

Oracles: chipforge.legal's own ``check_scenario`` for the wiring (the section must carry
its verdicts, binding rules and margins unchanged), the H20's verdicts derived by hand
from the rules table of docs/legal.md, and a margin worked by hand for the cell text.
Only the section is built and rendered (from the template the page includes), not the
whole report.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
from html.parser import HTMLParser

import pytest
from jinja2 import Environment, PackageLoader

import chipforge.cost
from chipforge.arch import load_chip
from chipforge.errors import ChipforgeError
from chipforge.legal import NOT_LEGAL_ADVICE, SCENARIOS, RuleCheck, check_scenario
from chipforge.report._legality import binding_text, legality_html, legality_section

CHIPS = ("forge-i1", "h20")


@pytest.fixture(scope="module")
def section() -> dict:
    return legality_section([load_chip(name) for name in CHIPS])


def test_one_cell_per_chip_and_scenario_as_check_scenario_gives(section):
    assert [s["name"] for s in section["scenarios"]] == list(SCENARIOS)
    assert [r["chip"] for r in section["rows"]] == list(CHIPS)
    assert [r["own"] for r in section["rows"]] == [True, False]  # vendor chipforge, NVIDIA
    for row in section["rows"]:
        spec = load_chip(row["chip"])
        assert [c["scenario"] for c in row["cells"]] == list(SCENARIOS)
        for cell in row["cells"]:
            report = check_scenario(spec, cell["scenario"])
            assert cell["error"] is None
            assert cell["verdict"] == report.verdict
            assert [(b["rule_id"], b["value"], b["threshold"], b["margin"])
                    for b in cell["binding"]] == [
                (c.rule_id, c.value, c.threshold, c.margin) for c in report.binding]
    assert section["notice"] == NOT_LEGAL_ADVICE


# The H20 bought by a china-hq buyer on 2026-06-01 (docs/legal.md, rules table): TPP 2,368
# with PD ~2.9 is outside 3A090.a (TPP < 4800, PD < 5.92) and .b (TPP < 2400, PD < 3.2);
# the April 2025 letter ended on 2025-07-14, when licences began to be granted under the
# requirement kept (nvidia-h20-2025-07, from 2025-07-14, product named): licence required.
# A purchase meets neither the foundry rule nor its approved-designer exception, and the
# fab does not enter it, so the approved and domestic scenarios change nothing; full-ban
# adds the assumption that no NVIDIA part may be bought: prohibited.
H20 = {
    "tsmc-2026": ("licence required", ["nvidia-h20-2025-07"]),
    "tsmc-2026-approved": ("licence required", ["nvidia-h20-2025-07"]),
    "domestic-2026": ("licence required", ["nvidia-h20-2025-07"]),
    "full-ban": ("prohibited", ["nvidia-h20-2025-07", "full-ban-nvidia"]),
}


def test_h20_verdicts_derived_from_the_rules(section):
    cells = {c["scenario"]: c for c in section["rows"][1]["cells"]}
    assert set(H20) == set(SCENARIOS)
    for name, (verdict, rules) in H20.items():
        assert cells[name]["verdict"] == verdict, name
        assert [b["rule_id"] for b in cells[name]["binding"]] == rules, name


def test_binding_text_gives_value_threshold_and_margin():
    # 110.6e9 transistors against the foundry rule's 30e9: (110.6 - 30) / 30 = +268.7%
    check = RuleCheck(
        rule_id="foundry-dd-2025", title="", provision="", effective=dt.date(2025, 1, 16),
        applies=True, quantity="transistors", value=110.6e9, threshold="transistors >= 30e9",
        margin=(110.6e9 - 30e9) / 30e9, binds=True, outcome="presumed controlled",
        citation=None, reason="")
    assert binding_text(check) == "foundry-dd-2025: transistors 110.6e9 vs >= 30e9, +269%"
    # the H100's TPP 15,831 against 3A090.a's 1600 (with PD >= 5.92): 14,231 / 1600 = +889%;
    # written with a thousands separator, never as 1.583e+04
    tpp = RuleCheck(
        rule_id="3a090a-2023", title="", provision="", effective=dt.date(2023, 11, 17),
        applies=True, quantity="tpp", value=15_830.88, threshold="tpp >= 1600",
        margin=(15_830.88 - 1600) / 1600, binds=True, outcome="licence required",
        citation=None, reason="")
    assert binding_text(tpp) == "3a090a-2023: tpp 15,831 vs >= 1600, +889%"
    named = RuleCheck(
        rule_id="nvidia-h20-2025-07", title="", provision="", effective=dt.date(2025, 7, 14),
        applies=True, quantity="product", value="h20", threshold="product in [h20]",
        margin=None, binds=True, outcome="licence required", citation=None, reason="")
    assert binding_text(named) == "nvidia-h20-2025-07: product in [h20]"


class _Cells(HTMLParser):
    """The legality table's cells: (chip, scenario) -> (title, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables, self.chip, self.cell = 0, None, None
        self.cells: dict[tuple[str, str], list[str]] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("class") == "legality":
            self.tables += 1
        if tag == "tr" and "data-chip" in a:
            self.chip = a["data-chip"]
        if tag == "td" and "data-scenario" in a:
            self.cell = (self.chip, a["data-scenario"])
            self.cells[self.cell] = [a.get("title") or "", ""]

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None

    def handle_data(self, data):
        if self.cell:
            self.cells[self.cell][1] += data


def test_rendered_table_and_notice(section):
    html = legality_html(section)
    parser = _Cells()
    parser.feed(html)
    assert parser.tables == 1
    assert set(parser.cells) == {(chip, s) for chip in CHIPS for s in SCENARIOS}
    for row in section["rows"]:
        for cell in row["cells"]:
            title, text = parser.cells[(row["chip"], cell["scenario"])]
            text = " ".join(text.split())
            assert text.startswith(cell["verdict"])
            for b in cell["binding"]:
                assert b["text"] in text and b["text"] in title
            if not cell["binding"]:
                assert title == "no rule binds" and "no rule binds" in text
            for p in cell["supply"]:
                assert f"supply: {p}" in text
    # the H20 under full-ban: the assumption's line (a rule that names a vendor, no margin)
    h20 = parser.cells[("h20", "full-ban")]
    assert "full-ban-nvidia" in h20[0] and h20[1].split()[0] == "prohibited"
    assert NOT_LEGAL_ADVICE in html and "docs/legal.md" in html


def test_the_page_includes_the_section():
    env = Environment(loader=PackageLoader("chipforge.report", "templates"))
    source = env.loader.get_source(env, "index.html")[0]
    assert '{% include "_legality.html" %}' in source
    assert '<a href="#legality">' in source


def test_a_chip_the_check_cannot_measure_gets_its_error_in_the_cell(monkeypatch):
    def no_density(chip):
        raise ChipforgeError("no density")

    # 3A090.c needs the HBM's bandwidth density at a foreign fab; at SMIC no rule does
    monkeypatch.setattr(chipforge.cost, "memory_bandwidth_density", no_density)
    row = legality_section([load_chip("forge-i1")])["rows"][0]
    cells = {c["scenario"]: c for c in row["cells"]}
    assert cells["tsmc-2026"]["verdict"] is None
    assert cells["tsmc-2026"]["error"].startswith(
        "rule 3a090c-2024 (ECCN 3A090.c (89 FR 96790)) tests memory_bw_density_gb_s_mm2, "
        "but chip 'forge-i1' has none")
    assert cells["domestic-2026"]["verdict"] == "uncontrolled"
    html = legality_html({"scenarios": [], "rows": [row], "notice": "", "doc": ""})
    assert f"error: {cells['tsmc-2026']['error']}" in html_lib.unescape(html)


def test_our_designs_say_their_memory_and_what_their_fab_cannot_supply():
    section = legality_section([load_chip("forge-i1")])
    # forge-i1 (N4, GDDR7) under domestic-2026: SMIC runs only N+2 (legal/data/context.yaml)
    cell = next(c for c in section["rows"][0]["cells"] if c["scenario"] == "domestic-2026")
    assert cell["supply"] == ["SMIC does not run N4: it offers SMIC-N+2"]
    assert "supply: SMIC does not run N4" in legality_html(section)
    # GDDR7 at 125 GB/s over 168 mm2 is 0.74 GB/s/mm2, under 3A090.c's 2: the report says why
    assert section["designs"][0].startswith(
        "forge-i1: GDDR7, not HBM: 3A090.c controls every HBM stack for this buyer; TPP 1,573")
