"""``chipforge ops``: every Core ATen op of the installed torch with its status in both
captures, the reasons for the unsupported ones and the totals; docs/compiler.md quotes the
live figures and table (so they cannot go stale)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from chipforge.cli import app  # noqa: E402
from chipforge.cli._ops import summary  # noqa: E402
from chipforge.compiler import coverage_totals, op_coverage  # noqa: E402

runner = CliRunner()
DOC = Path(__file__).resolve().parents[2] / "docs" / "compiler.md"
STATUSES = {"supported", "folded", "decomposed", "unsupported"}


def _core_ops() -> set[str]:
    """The Core ATen opset counted independently: every aten overload tagged core."""
    names = set()
    for qualified in torch._C._dispatch_get_all_op_names():
        if qualified.startswith("aten::"):
            packet, _, overload = qualified[6:].partition(".")
            op = getattr(getattr(torch.ops.aten, packet), overload or "default", None)
            if op is not None and torch.Tag.core in op.tags:
                names.add(packet)
    return names


def _ops(*flags: str) -> dict:
    result = runner.invoke(app, ["ops", "--json", *flags])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_lists_every_core_op_once_with_totals():
    doc = _ops()
    ops = [row["op"] for row in doc["ops"]]
    assert sorted(ops) == sorted(_core_ops())
    for mode in ("inference", "training"):
        covered = sum(row[mode] != "unsupported" for row in doc["ops"])
        assert doc["totals"][mode] == {"covered": covered, "total": len(ops),
                                       "percent": round(100 * covered / len(ops), 1)}
    for row in doc["ops"]:
        assert {row["inference"], row["training"]} <= STATUSES
        assert bool(row["reason"]) == ("unsupported" in (row["inference"], row["training"]))


def test_random_and_complex_ops_say_why():
    rows = {row["op"]: row for row in _ops()["ops"]}
    assert "no RNG" in rows["randn"]["reason"]
    assert "complex" in rows["_fft_r2c"]["reason"]
    assert rows["arange"]["inference"] == "folded"
    assert rows["add"]["inference"] == rows["add"]["training"] == "supported"


def test_missing_lists_only_uncovered_ops():
    missing = _ops("--missing")["ops"]
    everything = _ops()["ops"]
    assert missing == [row for row in everything
                       if "unsupported" in (row["inference"], row["training"])]


def test_table_ends_with_the_totals():
    result = runner.invoke(app, ["ops"])
    assert result.exit_code == 0
    assert summary(coverage_totals()) in result.stdout
    assert "_fft_r2c" in result.stdout


def test_the_docs_quote_the_live_coverage():
    """docs/compiler.md gives today's count and the --missing table; regenerate them with
    scripts/gen_coverage_docs.py after adding a handler."""
    text = DOC.read_text(encoding="utf-8")
    stale = ("docs/compiler.md's Core ATen section is stale: run "
             "`python scripts/gen_coverage_docs.py`")
    assert summary(coverage_totals()) + "." in text, stale
    table = re.search(r"<!-- chipforge ops --missing --markdown -->\n(.*?)\n<!-- end", text,
                      re.S)
    assert table is not None
    result = runner.invoke(app, ["ops", "--missing", "--markdown"])
    live = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert table[1].splitlines() == live, stale


def test_coverage_meets_the_target():
    """Issue 14's target: at least 75% of the Core ATen opset (inference captures)."""
    assert coverage_totals(op_coverage())["inference"]["percent"] >= 75.0
