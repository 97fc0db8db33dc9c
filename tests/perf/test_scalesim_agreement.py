"""The closed-form systolic model agrees with SCALE-Sim v3 on the golden table.

The table is produced by ``scripts/gen_scalesim_golden.py`` (SCALE-Sim 3.0.0
in its own venv); this test needs only the stdlib and pytest.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from chipforge.perf.systolic import systolic_compute_cycles, systolic_folds

GOLDEN = Path(__file__).parent / "data" / "scalesim_golden.csv"
REL_TOL = 0.01  # 1 %
MIN_ROWS_PER_DATAFLOW = 20


def _load() -> list[dict[str, str]]:
    with open(GOLDEN, newline="") as f:
        return list(csv.DictReader(f))


ROWS = _load()


def _id(row: dict[str, str]) -> str:
    return f"{row['dataflow']}-{row['rows']}x{row['cols']}-m{row['m']}n{row['n']}k{row['k']}"


def test_golden_table_has_enough_rows_per_dataflow() -> None:
    counts = Counter(row["dataflow"] for row in ROWS)
    for dataflow in ("ws", "os"):
        assert counts[dataflow] >= MIN_ROWS_PER_DATAFLOW, counts


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_matches_scalesim(row: dict[str, str]) -> None:
    # compute_cycles from SCALE-Sim includes stalls; the table is generated
    # with stall-free memories so that it is pure compute.
    assert int(row["stall_cycles"]) == 0
    args = (int(row[c]) for c in ("rows", "cols", "m", "n", "k"))
    model = systolic_compute_cycles(row["dataflow"], *args)
    golden = int(row["compute_cycles"])
    assert abs(model - golden) <= REL_TOL * golden, f"model {model} vs SCALE-Sim {golden}"


def test_reference_point_256x512x256_ws_128() -> None:
    # 8 folds x (2*128 + 128 + 256 - 2) - 1 = 5103, as SCALE-Sim reports.
    assert systolic_folds("ws", 128, 128, 256, 512, 256) == 8
    assert systolic_compute_cycles("ws", 128, 128, 256, 512, 256) == 5103


@pytest.mark.parametrize("func", [systolic_compute_cycles, systolic_folds])
def test_unknown_dataflow_raises(func) -> None:
    with pytest.raises(ValueError) as exc:
        func("is", 8, 8, 1, 1, 1)
    assert str(exc.value) == "unknown dataflow 'is'; expected 'ws' or 'os'"
