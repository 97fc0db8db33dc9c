"""``chipforge estimate --model`` and ``compare``: the memory fit, the split and the
assumptions are in the output, checked against hand-derived bytes and the API."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from typer.testing import CliRunner

from chipforge.cli import app
from chipforge.perf import estimate
from chipforge.workloads import llm_decode, load_llm_config
from clitools import chipforge_exe

runner = CliRunner()


def _json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chipforge_exe(), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def test_estimate_model_decode_json_by_hand():
    """Llama-3.1-8B decode, batch 32, context 2048, bf16 on an H20: weights 16.06 GB, KV
    2 x 32 x 8 x 128 x 2048 x 32 x 2 B, logits 32 x 128256 x 4 B + residual 32 x 4096 x 2 B."""
    doc = _json("estimate", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "32",
                "--context", "2048", "--chip", "h20")
    assert doc["chip"] == "h20" and doc["workload"] == "llama-3.1-8b decode b32 ctx2048"
    assert doc["fits"] is True and doc["parallelism"] == "1 chip" and doc["chips"] == 1
    assert doc["memory"]["weights_bytes"] == 8_030_261_248 * 2
    assert doc["memory"]["kv_cache_bytes"] == 2 * 32 * 8 * 128 * 2048 * 32 * 2
    assert doc["memory_bytes"] == (8_030_261_248 * 2 + 2 * 32 * 8 * 128 * 2048 * 32 * 2
                                   + 32 * 128256 * 4 + 32 * 4096 * 2)
    assert doc["items"] == 32 and doc["item_unit"] == "tokens"
    assert doc["items_per_s"] == pytest.approx(32 / doc["seconds"], rel=1e-12)
    api = estimate(llm_decode(load_llm_config("llama-3.1-8b"), 32, 2048), "h20")
    assert doc["seconds"] == api.seconds


def test_estimate_model_70b_on_h20_splits_or_refuses():
    doc = _json("estimate", "--model", "llama-3.1-70b", "--batch", "64", "--context", "4096",
                "--chip", "h20")
    assert (doc["fits"], doc["tp"], doc["chips"], doc["parallelism"]) == (True, 4, 4, "tp=4")
    assert doc["items_per_s_per_chip"] == pytest.approx(doc["items_per_s"] / 4, rel=1e-12)
    proc = _run("estimate", "--model", "llama-3.1-70b", "--batch", "64", "--context", "4096",
                "--chip", "h20", "--parallel", "none")
    assert proc.returncode == 0, proc.stderr
    assert "does not fit: needs >= 4 chips (tp=4: 56.8 GB per chip)" in proc.stdout
    assert "time (memory unbounded)" in proc.stdout
    refused = _json("estimate", "--model", "llama-3.1-70b", "--batch", "64", "--context",
                    "4096", "--chip", "h20", "--parallel", "none")
    assert refused["fits"] is False and refused["needs_chips"] == 4


@pytest.mark.parametrize("args,message", [
    (["--model", "llama-3.1-8b", "--parallel", "3x"],
     "error: --parallel '3x'; expected 'auto', 'none' or a positive tensor-parallel size\n"),
    (["--model", "llama-3.1-8b", "--phase", "serve"],
     "error: --phase 'serve'; expected one of decode, prefill, train\n"),
    (["--model", "llama-3.1-8b", "--batch", "0"],
     "error: llm_decode: batch=0; expected a positive integer\n"),
])
def test_bad_model_options_are_one_error_line(args, message):
    proc = _run("estimate", "--chip", "h20", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == message


def test_estimate_needs_exactly_one_subject():
    proc = _run("estimate", "--op", "matmul m=8 n=8 k=8", "--model", "llama-3.1-8b")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Give exactly one of --op, --model or --workload." in proc.stderr


def test_compare_states_dtype_batch_and_parallelism_per_cell():
    doc = _json("compare", "--chips", "h20,h200-sxm")
    assert set(doc["assumptions"]) >= {"dtype", "parallelism", "memory", "batch"}
    rows = {row["workload"]: row for row in doc["rows"]}
    h20, h200 = rows["llama3.1-70b-decode"]["cells"]
    assert (h20["dtype"], h20["batch"], h20["parallelism"]) == ("bf16", 64, "tp=4")
    # 141 GB H200, 126.9 GB usable: tp 2 holds 70.6 + 42.9 GB
    assert h200["parallelism"] == "tp=2" and h200["chips"] == 2
    assert h20["throughput_per_chip"] == pytest.approx(h20["throughput"] / 4, rel=1e-12)
    train = rows["llama3.1-8b-train"]["cells"][0]
    assert train["fits"] is False and train["needs_chips"] == 2 and "seconds" not in train
    assert train["batch"] == 256 and train["dtype"] == "bf16"
    text = _run("compare", "--chips", "h20")
    assert text.returncode == 0, text.stderr
    assert "does not fit" in text.stdout and "tp=4" in text.stdout
