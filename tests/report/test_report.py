"""``write_report``: an index.html that names every workload and links PNGs that exist."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from chipforge.report import write_report
from chipforge.workloads import workload_names

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"  # PNG spec, section 5.2: the 8-byte signature


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


def test_write_report(tmp_path):
    chips = ["h100-sxm", "forge-i1"]
    designs = tmp_path / "designs"  # a reference DSE run's checked-in Pareto plot
    (designs / "forge-i1").mkdir(parents=True)
    (designs / "forge-i1" / "pareto.png").write_bytes(_tiny_png())
    out = tmp_path / "report"
    path = write_report(out, chips, designs)
    tmp_path = out
    assert path == tmp_path / "index.html"
    html = path.read_text()
    for name in workload_names():
        assert name in html
    for chip in chips:
        assert chip in html

    parser = _Images()
    parser.feed(html)
    sources = [img["src"] for img in parser.images]
    # one roofline per chip, one bar chart per workload, the silicon area and cost bars and
    # the one Pareto front found under designs/
    assert len(sources) == len(chips) + len(workload_names()) + 3 == 13
    assert len(set(sources)) == len(sources)
    alts = {img["alt"] for img in parser.images}
    assert {f"roofline of {chip}" for chip in chips} <= alts
    assert set(workload_names()) <= alts
    assert {"die area by component", "unit cost by component",
            "Pareto front of forge-i1"} <= alts
    # the silicon table: export tiers as the ECCN 3A090 rule gives them (H100 TPP ~15,832;
    # forge-i1 TPP 2,307 with PD 2.73 < 3.2, docs/silicon.md)
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


def test_write_report_creates_the_folder(tmp_path):
    out = tmp_path / "nested" / "report"
    path = write_report(out, ["tpu-v5e"])
    assert path == out / "index.html"
    assert (out / "roofline-tpu-v5e.png").read_bytes()[:8] == PNG_MAGIC


def _tiny_png() -> bytes:
    """A valid 1x1 PNG made with matplotlib (stands in for a DSE run's plot)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    plt.imsave(buf, [[0.0]], format="png")
    return buf.getvalue()
