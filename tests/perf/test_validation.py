"""The engine against measured A100 data (../shared/validation; skipped where absent).

Targets from issue 2: median absolute percentage error <= 10% on GEMM and on attention.
Where a target is not met yet the test is a strict xfail naming the gap, so it turns red
the day the model meets it and the marker must come off; docs/validation.md explains the
remaining error op by op.
"""

from __future__ import annotations

import pytest

from chipforge.arch import load_chip
from chipforge.perf import validation as v

FOLDER = v.validation_dir()
pytestmark = pytest.mark.skipif(
    FOLDER is None, reason="measured data absent: ../shared/validation/a100 not found "
                           "(set CHIPFORGE_VALIDATION_DIR)")
TARGET = 0.10


def _score(name: str, rows: slice = slice(None)) -> v.TableScore:
    samples = v.TABLES[name][0](FOLDER / "a100")[rows]
    return v.score(name, samples, load_chip("a100-sxm"))


def test_every_table_loads_with_its_documented_row_count():
    counts = {name: len(loader(FOLDER / "a100")) for name, (loader, _) in v.TABLES.items()}
    assert counts["gemm_bf16"] == 9240  # README: 9,240 shapes
    assert counts["gpt3_layer_prefill"] == counts["gpt3_layer_decode"] == 12
    assert all(n > 0 for n in counts.values())


def test_gemm_held_out_median_error_meets_target():
    assert _score("gemm_bf16", slice(1, None, 2)).median_ape <= TARGET


def test_gemm_large_calls_median_error_meets_target():
    """Above 100 us the fixed per-call costs no longer dominate."""
    samples = [s for s in v.gemm_bf16(FOLDER / "a100") if s.measured_s >= 100e-6]
    assert v.score("gemm", samples, load_chip("a100-sxm")).median_ape <= TARGET


def test_context_attention_median_error_meets_target():
    assert _score("context_attention").median_ape <= TARGET


@pytest.mark.xfail(strict=True, reason="decode attention median APE 19.7%: TensorRT-LLM runs "
                                       "GQA groups >= 48 per query head; docs/validation.md")
def test_generation_attention_median_error_meets_target():
    assert _score("generation_attention").median_ape <= TARGET


def test_gpt3_prefill_layer_total_meets_target():
    """The whole layer (sum over its 12 ops) as LLMCompass measured it."""
    samples = v.llmcompass_gpt3_prefill(FOLDER / "a100")
    chip = load_chip("a100-sxm")
    from chipforge.perf import estimate

    measured = sum(s.measured_s for s in samples)
    predicted = sum(estimate(s.op, chip).seconds for s in samples)
    assert abs(predicted - measured) / measured <= TARGET
