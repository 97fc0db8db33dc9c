"""``write_report``: an index.html that names every workload and links PNGs that exist."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chipforge.report import compare_suite, write_report
from chipforge.workloads import workload_names

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"  # PNG spec, section 5.2: the 8-byte signature


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


CHIPS = ["h100-sxm", "forge-i1"]
# the tests share one written report: keep them on one xdist worker so it is written once;
# writing it takes half a minute, so under xdist the module starts first (tests/conftest.py)
pytestmark = [pytest.mark.xdist_group("report"), pytest.mark.slow]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """One report for the module's tests (writing it takes seconds), into a folder two
    levels of which do not exist yet (write_report creates them)."""
    root = tmp_path_factory.mktemp("report")
    designs = root / "designs"  # a reference DSE run's checked-in Pareto plot
    (designs / "forge-i1").mkdir(parents=True)
    (designs / "forge-i1" / "pareto.png").write_bytes(_tiny_png())
    out = root / "nested" / "report"
    assert not out.parent.exists()
    return write_report(out, CHIPS, designs)


def test_write_report(report):
    chips = CHIPS
    path = report
    tmp_path = report.parent
    assert path == tmp_path / "index.html"
    html = path.read_text()
    for name in workload_names():
        assert name in html
    for chip in chips:
        assert chip in html

    parser = _Images()
    parser.feed(html)
    sources = [img["src"] for img in parser.images]
    # one roofline per chip, one bar chart per workload, the silicon area and cost bars,
    # the one Pareto front found under designs/, and the cluster section's scaling plot,
    # TTFT and TPOT distributions and fleet cost
    assert len(sources) == len(chips) + len(workload_names()) + 3 + 4 == 17
    assert len(set(sources)) == len(sources)
    alts = {img["alt"] for img in parser.images}
    assert {f"roofline of {chip}" for chip in chips} <= alts
    assert set(workload_names()) <= alts
    assert {"die area by component", "unit cost by component",
            "Pareto front of forge-i1"} <= alts
    assert {"time to train and MFU versus chip count", "TTFT distribution per chip",
            "TPOT distribution per chip", "fleet cost per scenario"} <= alts
    # the cluster section names each chip's plan or deployment, or why there is none
    cluster = html[html.index('id="cluster"'):]
    for chip in chips:
        assert f"<td>{chip}</td>" in cluster
    # both chips serve the 70B model in their systems (a system's name passed where a chip
    # was expected once made every row 'no deployment: unknown chip ...')
    assert "no deployment" not in cluster
    # the silicon table: export tiers as the ECCN 3A090 rule gives them (H100 TPP ~15,832;
    # forge-i1 TPP 2,386 with PD 2.88 < 3.2, docs/silicon.md)
    assert "3A090.a" in html and "not controlled" in html
    for src in sources:
        assert src and src.endswith(".png")
        png = tmp_path / src
        assert png.is_file(), src
        data = png.read_bytes()
        assert data[:8] == PNG_MAGIC, src
        if not src.startswith("pareto-"):
            assert len(data) > 1000, src  # a real plot, not an empty image
        else:  # copied as is
            assert data == _tiny_png()
    # the compiled-model section links one Perfetto trace per example model and chip
    traces = sorted(p.name for p in tmp_path.glob("trace-*.json"))
    assert traces == [f"trace-{m}-{c}.json" for m in ("attention", "mlp")
                      for c in ("forge-i1", "forge-t1")]
    for trace in traces:
        assert f'href="{trace}"' in html
        events = json.loads((tmp_path / trace).read_text())["traceEvents"]
        assert any(e["ph"] == "X" for e in events)
    # nothing else was written
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*sources, *traces,
                                                                  "index.html"])


def test_write_report_creates_the_folder(report):
    """The shared report's folder, root/nested/report, did not exist (the fixture checks)."""
    out = report.parent
    assert out.name == "report" and out.parent.name == "nested"
    assert report == out / "index.html" and report.is_file()
    for chip in CHIPS:
        assert (out / f"roofline-{chip}.png").read_bytes()[:8] == PNG_MAGIC


def _tiny_png() -> bytes:
    """A valid 1x1 PNG made with matplotlib (stands in for a DSE run's plot)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    plt.imsave(buf, [[0.0]], format="png")
    return buf.getvalue()


def _suite_rows(html: str) -> dict[tuple[str, str], str]:
    """The comparison table's row of each (workload, chip)."""
    rows = re.findall(r'<tr data-workload="([^"]+)" data-chip="([^"]+)"[^>]*>(.*?)</tr>',
                      html, re.S)
    return {(w, c): body for w, c, body in rows}


def test_the_page_answers_first_and_states_what_does_not_fit(report):
    html = report.read_text()
    assert re.findall(r'<h2 id="([a-z]+)"', html)[0] == "answer"
    # forge-i1's limit: at TPP 1,573 every 3A090 clause needs TPP >= 1600
    assert "ECCN 3A090" in html and "TPP must stay &lt; 1600" in html
    assert "× H100" in html and "Not in this run, so no ratio: H20" in html
    assert not re.search(r"\de[+-]\d", html)  # engineering notation, never 4.68e+05
    rows = _suite_rows(html)
    data = compare_suite(CHIPS)  # the comparison the page was drawn from
    assert len(rows) == len(data["rows"]) * len(CHIPS)
    # Llama-3.1-8B training (~150 GB with Adam state) fits neither chip alone
    assert any(c.get("fits") is False for r in data["rows"] for c in r["cells"])
    for row in data["rows"]:
        for cell in row["cells"]:
            body = rows[(row["workload"], cell["chip"])]
            if cell.get("fits", True) is False:
                assert "does not fit" in body and "/s<" not in body, body
            elif "error" not in cell:
                assert f"{cell['unit']}/s" in body and "does not fit" not in body, body


# the probe runs first in the page: it records script errors, console.error calls and
# resources that fail to load, then on load what the images and the layout came to
_PROBE = """<script>
window.__errors = [];
addEventListener("error", e => __errors.push(e.message || (e.target && e.target.src)), true);
const __ce = console.error;
console.error = (...a) => { __errors.push("console.error: " + a.join(" ")); __ce(...a); };
addEventListener("load", () => {
  const imgs = [...document.images];
  const tops = new Set([...document.querySelectorAll("#rooflines + p + .grid img")]
                       .map(i => i.offsetTop));
  const pre = document.createElement("pre");
  pre.id = "__probe";
  pre.textContent = JSON.stringify({errors: __errors, images: imgs.length,
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    roofline_rows: tops.size, overflow: document.documentElement.scrollWidth > innerWidth});
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed; the Makefile's dev set-up installs Debian's "
                    "chromium package (apt-get install chromium)")
    return path


def _render(report: Path, tmp: Path, width: int) -> dict:
    """Load a copy of the page (with the probe, and a <base> so its images resolve to the
    report folder) in headless Chromium; the probe's findings from the dumped DOM."""
    html = report.read_text().replace(
        '<meta charset="utf-8">',
        f'<meta charset="utf-8"><base href="{report.parent.as_uri()}/">{_PROBE}', 1)
    page = tmp / f"probe-{width}.html"
    page.write_text(html)
    done = subprocess.run(
        [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
         f"--user-data-dir={tmp / f'profile-{width}'}", f"--window-size={width},1000",
         "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no probe in the dumped DOM; chromium said: {done.stderr[-2000:]}"
    probe = json.loads(html_lib.unescape(found.group(1)))
    # console messages reach stderr too; an uncaught error there is one the probe missed
    probe["stderr_errors"] = [line for line in done.stderr.splitlines()
                              if "CONSOLE" in line and "Uncaught" in line]
    return probe


def test_the_page_renders_in_chromium_without_errors(report, tmp_path):
    wide = _render(report, tmp_path, 1600)
    assert wide["errors"] == [] and wide["stderr_errors"] == []
    assert wide["broken"] == []
    assert wide["images"] == len(_image_sources(report.read_text()))
    # a grid, not one column: on a wide screen the rooflines share a row
    assert wide["roofline_rows"] < len(CHIPS)
    # and on a narrow one nothing runs off the page (wide tables scroll in their box)
    narrow = _render(report, tmp_path, 420)
    assert narrow["errors"] == [] and narrow["broken"] == []
    assert not narrow["overflow"]
    assert narrow["roofline_rows"] == len(CHIPS)


def _image_sources(html: str) -> list[str]:
    parser = _Images()
    parser.feed(html)
    return [img["src"] for img in parser.images]


def test_the_page_shows_the_engine_s_held_out_error_per_chip_and_dtype(report):
    """Issue 12: the report carries the per-chip, per-dtype error table, with the values
    make validation stored (the oracle: held_out_scores.json, measured on held-out rows)."""
    from chipforge.perf import validation

    html = report.read_text()
    section = html[html.index('id="trust"'):html.index('id="rooflines"')]
    scores = validation.held_out_scores()
    assert len(scores) == section.count("<tr>") - 1  # one row per table, plus the header
    for s in scores:
        assert s["what"] in section
        assert f"{100 * s['median_ape']:.1f}%" in section
    assert {s["chip"] for s in scores} == {"a100-sxm", "h100-sxm"}
    assert ">fp8<" in section and ">bf16<" in section
    # a missed target is said next to its row, not hidden; a met one says nothing
    assert section.count("(not met)") == sum(not s["met"] for s in scores)
