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
    path = write_report(tmp_path, chips)
    assert path == tmp_path / "index.html"
    html = path.read_text()
    for name in workload_names():
        assert name in html
    for chip in chips:
        assert chip in html

    parser = _Images()
    parser.feed(html)
    sources = [img["src"] for img in parser.images]
    # one roofline per chip and one bar chart per workload
    assert len(sources) == len(chips) + len(workload_names()) == 10
    assert len(set(sources)) == len(sources)
    alts = {img["alt"] for img in parser.images}
    assert {f"roofline of {chip}" for chip in chips} <= alts
    assert set(workload_names()) <= alts
    for src in sources:
        assert src and src.endswith(".png")
        png = tmp_path / src
        assert png.is_file(), src
        data = png.read_bytes()
        assert data[:8] == PNG_MAGIC, src
        assert len(data) > 1000, src  # a real plot, not an empty image
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
