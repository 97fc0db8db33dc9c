"""``chipforge ops``: the Core ATen coverage of the PyTorch captures.

Every op of the installed torch's Core ATen opset, with its status in capture()
(inference) and capture_fx() (training): supported, folded (creation ops, always constants),
decomposed (PyTorch rewrites it into other ops before capture) or not supported with the
reason; then the totals (:func:`summary`, the line
docs/compiler.md quotes). ``--missing`` lists only the ops one capture or the other does
not cover; ``--markdown`` prints the table as Markdown (the docs' table).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from chipforge.cli._output import JsonOption, print_json, print_table, say
from chipforge.errors import ChipforgeError

MissingOption = Annotated[bool, typer.Option("--missing", help="list only the ops that "
                                             "capture() or capture_fx() does not cover")]
MarkdownOption = Annotated[bool, typer.Option("--markdown", help="print the table as Markdown")]


def summary(totals: dict) -> str:
    """The one-line totals, as docs/compiler.md quotes them."""
    i, t = totals["inference"], totals["training"]
    return (f"Core ATen coverage: {i['covered']} of {i['total']} ops in inference captures "
            f"({i['percent']:.1f}%), {t['covered']} of {t['total']} in training captures "
            f"({t['percent']:.1f}%)")


def markdown_table(rows) -> str:
    """The coverage rows as a Markdown table (the one docs/compiler.md quotes)."""
    lines = ["| op | inference | training | reason |", "| --- | --- | --- | --- |"]
    lines += [f"| `{r.op}` | {r.inference} | {r.training} | {r.reason} |" for r in rows]
    return "\n".join(lines)


def missing_rows(rows) -> list:
    """The rows of ops one of the captures does not cover (``--missing``)."""
    return [r for r in rows if "unsupported" in (r.inference, r.training)]


def _coverage():
    try:
        from chipforge.compiler import coverage_totals, op_coverage
    except ImportError as e:  # torch is an optional dependency of the compiler
        raise ChipforgeError(f"chipforge ops needs torch ({e}); install it with "
                             f"`pip install torch`") from e
    rows = op_coverage()
    return rows, coverage_totals(rows)


def ops_cmd(json_out: JsonOption = False, missing: MissingOption = False,
            markdown: MarkdownOption = False) -> None:
    """Every Core ATen op: supported or not (and why) in inference and training captures."""
    rows, totals = _coverage()
    shown = missing_rows(rows) if missing else rows
    if json_out:
        print_json({"ops": [{"op": r.op, "inference": r.inference, "training": r.training,
                             "reason": r.reason or None} for r in shown],
                    "totals": totals})
        return
    if markdown:
        say(markdown_table(shown))
    else:
        table = Table("op", "inference", "training", "reason")
        for r in shown:
            table.add_row(r.op, r.inference, r.training, r.reason)
        print_table(table)
    say(summary(totals) + " (covered: supported, folded as constants, or decomposed by "
        "PyTorch into ops that are)")
    say("Any op whose tensor inputs are all constants is folded at capture time, supported "
        "or not.")
