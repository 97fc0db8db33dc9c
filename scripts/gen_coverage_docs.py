"""Rewrite the Core ATen figures of docs/compiler.md from the live handler registry: the
summary line and the table of ops not covered (what ``chipforge ops --missing --markdown``
prints). Run it after adding or removing a handler; tests/cli/test_ops_cli.py fails while
the docs are stale."""

from __future__ import annotations

import re
from pathlib import Path

from chipforge.cli._ops import markdown_table, missing_rows, summary
from chipforge.compiler import coverage_totals, op_coverage

DOC = Path(__file__).resolve().parent.parent / "docs" / "compiler.md"


def main() -> None:
    rows = op_coverage()
    line = summary(coverage_totals(rows))
    text = re.sub(r"^Core ATen coverage: .*$", line + ".", DOC.read_text(encoding="utf-8"),
                  count=1, flags=re.M)
    text = re.sub(r"(<!-- chipforge ops --missing --markdown -->\n).*?(\n<!-- end)",
                  lambda m: m[1] + markdown_table(missing_rows(rows)) + m[2], text, count=1,
                  flags=re.S)
    DOC.write_text(text, encoding="utf-8")
    print(f"{DOC}: {line}")


if __name__ == "__main__":
    main()
