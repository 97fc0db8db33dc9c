"""Issue 12's targets on the held-out half of every A100 and H100 table.

The shipped parameters were fitted (scripts/calibrate.py) on even rows only; these tests
score odd rows against the measurements. A table whose target is not met yet is a strict
xfail naming the gap, so the marker must come off the day the model meets it; its
``PINNED`` value keeps the error from growing meanwhile. Rows are stride-sampled from the
held-out half to keep the suite fast (the full half is docs/validation.md's).
"""

from __future__ import annotations

import functools
import json

import pytest

from chipforge.arch import load_chip
from chipforge.perf import validation as v

FOLDER = v.validation_dir()
STRIDE = 7  # every 7th held-out row
# today's held-out medians (stride-sampled), rounded up to the next percent: an
# expectation the model must not fall behind while the target is not met
PINNED = {
    "gemm_bf16": 0.07, "h100_gemm_bf16": 0.06, "h100_gemm_fp8": 0.05,
    "context_attention": 0.06, "generation_attention": 0.09,
    "h100_context_attention": 0.08, "h100_generation_attention": 0.10,
    "h100_moe": 0.10, "nccl": 0.13, "h100_nccl": 0.11,
}
NOT_MET: dict[str, str] = {}
# tables within half a point of their target: their verdict is taken on the whole held-out
# half, as docs/validation.md's, so the stride sample cannot pass a table the half fails
WHOLE_HALF = frozenset({"h100_generation_attention"})


@functools.cache  # the model is deterministic: each table is scored once per module
def _median(name: str, stride: int = STRIDE) -> float:
    table = v.TABLES[name]
    held = v.held_out(table.samples(FOLDER))[::stride]
    return v.score(name, held, load_chip(table.chip)).median_ape


def _cases():
    for name, table in v.TABLES.items():
        if not table.kind:
            continue
        marks = ([pytest.mark.xfail(strict=True, reason=NOT_MET[name])]
                 if name in NOT_MET else [])
        yield pytest.param(name, v.TARGETS[table.kind], marks=marks, id=name)


@pytest.mark.parametrize(("name", "target"), list(_cases()))
def test_held_out_median_meets_the_issue_target(name, target):
    assert _median(name, 1 if name in WHOLE_HALF else STRIDE) <= target


@pytest.mark.parametrize("name", sorted(PINNED))
def test_held_out_median_does_not_fall_behind_today(name):
    assert _median(name) <= PINNED[name]


def test_every_scored_table_is_pinned_and_has_a_target():
    scored = {n for n, t in v.TABLES.items() if t.kind}
    assert scored == set(PINNED)
    assert set(NOT_MET) <= scored
    assert {v.TABLES[n].chip for n in scored} == {"a100-sxm", "h100-sxm"}


def test_the_shipped_scores_are_today_s():
    """held_out_scores.json (make validation) agrees with the model as it is: each
    table's stored median is the stride sample's within 2.5 points (an oracle check that
    the report's table was regenerated after the last change to the model)."""
    stored = {s["table"]: s for s in v.held_out_scores()}
    assert set(stored) == set(PINNED)
    for name in ("h100_gemm_fp8", "gemm_bf16", "h100_nccl"):
        assert stored[name]["median_ape"] == pytest.approx(_median(name), abs=0.025), name
    assert all(s["met"] == (s["median_ape"] <= s["target"]) for s in stored.values())
    assert json.loads(v.SCORES_FILE.read_text())["generated_by"] == "scripts/gen_validation.py"
