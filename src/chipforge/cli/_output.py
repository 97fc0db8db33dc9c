"""What every command prints, in one place, so that the CLI scripts the same way everywhere.

- ``--json``: one JSON document on stdout (SI units, the keys the docs list), nothing else;
  non-finite floats become ``null`` so that strict parsers accept it.
- Tables: rich tables sized to the terminal on a TTY; when stdout is not a terminal (a
  pipe, a file) a table is drawn at its natural width, never truncated or wrapped, whatever
  ``COLUMNS`` says.
- Progress: spinners and bars go to stderr, and only when stderr is a terminal, so a piped
  or captured run gets clean stdout and stderr (stderr then holds only warnings and errors).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# file=None: rich looks sys.stdout/sys.stderr up at print time (CliRunner swaps them)
out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON document (SI "
                                          "units) on stdout instead of the table")]


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and inf/nan as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(doc: Any) -> None:
    """Write ``doc`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(_plain(doc), indent=2) + "\n")
    sys.stdout.flush()


def say(text: str, **kwargs: Any) -> None:
    """One line of text on stdout, never wrapped at the terminal width."""
    out.print(text, soft_wrap=True, **kwargs)


def print_table(table: Table) -> None:
    """A table on stdout: terminal width on a TTY, else its full natural width."""
    if out.is_terminal:
        out.print(table)
        return
    width = out.measure(table, options=out.options.update_width(10**6)).maximum
    Console(width=max(width, 20), no_color=True, highlight=False).print(table)


def fmt_si(value: float | None, unit: str) -> str:
    """``989 TFLOP/s``: three significant digits with a decimal SI prefix."""
    if value is None:
        return "-"
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def fmt_s(seconds: float) -> str:
    """``1.18 ms``: a duration with the largest unit that keeps it >= 1."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


@contextlib.contextmanager
def status(text: str) -> Iterator[None]:
    """A spinner with ``text`` on stderr while the block runs (only on a terminal)."""
    # bound to the stream of now: a block may redirect sys.stderr (the compile capture)
    console = Console(file=sys.stderr)
    if not console.is_terminal:
        yield
        return
    with console.status(text):
        yield


@contextlib.contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Any]:
    """A bar on stderr (only on a terminal); yields ``advance(description)``."""
    columns = (TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err, disable=not err.is_terminal, transient=False) as bar:
        task = bar.add_task("", total=total)

        def advance(description: str = "") -> None:
            bar.update(task, advance=1, description=description)

        yield advance


def comma_list(text: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated option ('' gives none)."""
    return [item.strip() for item in text.split(",") if item.strip()]


# the planners' GPU comparison: which chips, under which legal scenario's verdicts
CompareOption = Annotated[str, typer.Option(
    help="chips bought with the same capital, comma-separated ('' for none)")]
CompareScenarioOption = Annotated[str | None, typer.Option(
    help="legal scenario for the compared chips' export verdicts (default: chipforge "
         "legal's)")]
