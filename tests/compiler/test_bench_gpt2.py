"""bench/bench_gpt2.py runs (one GPT-2 small layer, 8 tokens) and its model agrees with PyTorch."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_gpt2.py"
# by hand, GPT2Config's defaults: token (50257 x 768) and position (1024 x 768) embeddings,
# per layer 2 layer norms, c_attn 768 x 2304, attention c_proj 768 x 768, c_fc 768 x 3072
# and MLP c_proj 3072 x 768 with their biases, and the final layer norm (lm_head is tied)
EMBED = 50257 * 768 + 1024 * 768
LAYER = 2 * 2 * 768 + (768 + 1) * 2304 + (768 + 1) * 768 + (768 + 1) * 3072 + (3072 + 1) * 768


@pytest.mark.slow
def test_one_layer_prefill_runs_and_matches_pytorch(monkeypatch, capsys) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # the bench sets them; restored
        monkeypatch.setenv(var, "1")
    spec = importlib.util.spec_from_file_location("bench_gpt2", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(sys, "argv", ["bench_gpt2.py", "--layers", "1", "--tokens", "8"])
    bench.main()
    out = capsys.readouterr().out
    params = int(re.search(r"parameters\s+([\d,]+)", out).group(1).replace(",", ""))
    assert params == EMBED + LAYER + 2 * 768 == 46_473_216
    assert int(re.search(r"graph nodes\s+(\d+)", out).group(1)) > 0
    assert int(re.search(r"simulated cycles\s+([\d,]+)", out).group(1).replace(",", "")) > 0
    # bf16 activations: within 2e-2 of PyTorch fp32, relative to the largest output
    err = float(re.search(r"max \|torch fp32\| = (\S+)", out).group(1))
    assert err < 2e-2
