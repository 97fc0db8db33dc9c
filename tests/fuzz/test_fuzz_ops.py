"""Fuzzed op strings: random kinds, keys and values (huge, negative, non-ASCII, partial
shapes). Each parses into an op with finite, non-negative FLOPs and bytes that reads back
from its own description and estimates in bounded time, or fails with one line."""

from __future__ import annotations

import math
import random

import pytest
from fuzzkit import check_case

from chipforge.arch import load_chip
from chipforge.ops import OpKind, parse_op
from chipforge.perf import estimate

KINDS = [k.value for k in OpKind] + ["MatMul", "conv3d", ""]
KEYS = ["m", "n", "k", "batch", "dtype", "in_ch", "out_ch", "h", "w", "kh", "kw", "stride",
        "padding", "groups", "q_len", "kv_len", "heads", "kv_heads", "head_dim", "causal",
        "numel", "fn", "rows", "cols", "elements", "devices", "dim", "num_embeddings", "x"]
VALUES = ["1", "7", "64", "4096", "0", "-1", "2**48", "281474976710657", "1" * 40, "4_096",
          "\u0664\u0660", "\uff11", "1.5", "1e3", "bf16", "fp8_e4m3", "int8", "true", "no",
          "silu", "", "=", "3"]
CHIP = load_chip("forge-t1")


def _random_op(rng: random.Random) -> str:
    words = [rng.choice(KINDS)]
    for _ in range(rng.randrange(8)):
        words.append(f"{rng.choice(KEYS)}={rng.choice(VALUES)}")
    return " ".join(words)


@pytest.mark.parametrize("seed", range(300))
def test_random_op_strings(seed):
    rng = random.Random(seed)
    text = _random_op(rng)
    status, op = check_case(lambda: parse_op(text))
    if status == "error":
        return
    assert math.isfinite(op.flops) and op.flops >= 0
    assert math.isfinite(op.bytes) and op.bytes >= 0
    assert parse_op(op.describe()) == op  # the description is the same op
    if seed % 6 == 0 and op.kind.value in ("matmul", "conv2d", "elementwise", "softmax"):
        status, est = check_case(lambda: estimate(op, CHIP))
        if status == "ok":
            assert math.isfinite(est.seconds) and est.seconds > 0
