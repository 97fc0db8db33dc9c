"""Op IR: FLOPs and minimum bytes against hand-derived values; identity and round-trips.

Convention (module docstring of chipforge.ops._ir): one MAC = 2 FLOPs; minimum bytes =
every input read once and every output written once.
"""

from __future__ import annotations

import dataclasses

import pytest

from chipforge import ops
from chipforge.errors import OpSyntaxError
from chipforge.ops import (
    AllGather,
    AllReduce,
    Attention,
    Conv2d,
    Elementwise,
    Matmul,
    arithmetic_intensity,
    parse_op,
)

# ---- matmul -----------------------------------------------------------------------------


def test_matmul_square_bf16():
    op = ops.matmul(4096, 4096, 4096)
    assert op.flops == 137_438_953_472  # 2 * 4096**3 = 2 * 68_719_476_736
    # A 4096x4096 + B 4096x4096 + C 4096x4096, 2 bytes each: 3 * 16_777_216 * 2
    assert op.bytes == 100_663_296
    assert arithmetic_intensity(op) == pytest.approx(137_438_953_472 / 100_663_296)


def test_matmul_rectangular():
    op = ops.matmul(m=512, n=1024, k=64)
    assert op.flops == 2 * 512 * 1024 * 64 == 67_108_864
    # (m*k + k*n + m*n) * 2 = (32_768 + 65_536 + 524_288) * 2
    assert op.bytes == 1_245_184


@pytest.mark.parametrize(("dtype", "expected"), [
    ("fp32", 4 * 3 * 256 * 256),  # 4 bytes per element, three 256x256 matrices
    ("tf32", 4 * 3 * 256 * 256),  # tf32 is stored as fp32
    ("fp16", 2 * 3 * 256 * 256),
    ("fp8_e4m3", 1 * 3 * 256 * 256),
    ("int8", 1 * 3 * 256 * 256),
])
def test_matmul_bytes_per_dtype(dtype, expected):
    op = ops.matmul(256, 256, 256, dtype=dtype)
    assert op.bytes == expected
    assert op.flops == 2 * 256**3  # FLOPs do not depend on the dtype


def test_batched_matmul():
    op = ops.matmul(m=128, n=256, k=64, batch=8)
    assert op.flops == 33_554_432  # 2 * 8 * 128 * 256 * 64
    # 8 * (128*64 + 64*256 + 128*256) * 2 = 8 * 57_344 * 2
    assert op.bytes == 917_504


# ---- conv2d -----------------------------------------------------------------------------


def test_conv2d_resnet_stem():
    # ResNet stem: 3 -> 64 channels, 7x7, stride 2, padding 3, 224x224 -> 112x112
    op = ops.conv2d(batch=1, in_ch=3, out_ch=64, h=224, w=224, kernel=7, stride=2, padding=3)
    assert (op.out_h, op.out_w) == (112, 112)  # (224 + 2*3 - 7) // 2 + 1 = 112
    assert op.flops == 2 * 112 * 112 * 64 * 3 * 49 == 236_027_904
    # in 3*224*224 = 150_528, weights 64*3*7*7 = 9_408, out 64*112*112 = 802_816; 2 bytes
    assert op.bytes == (150_528 + 9_408 + 802_816) * 2 == 1_925_504


def test_conv2d_as_implicit_gemm():
    op = ops.conv2d(batch=2, in_ch=64, out_ch=128, h=56, w=56, kernel=3, padding=1)
    gemm = op.as_matmul()
    # M = N*OH*OW = 2*56*56, N = OC = 128, K = IC*KH*KW = 64*9
    assert (gemm.m, gemm.n, gemm.k, gemm.batch) == (6272, 128, 576, 1)
    assert op.flops == 2 * 6272 * 128 * 576


def test_grouped_conv_flops():
    # depthwise 3x3 on 32 channels of 16x16 (stride 1, padding 1): each output element is
    # 9 MACs, 32*16*16 outputs -> 2 * 9 * 8192 FLOPs
    op = ops.conv2d(batch=1, in_ch=32, out_ch=32, h=16, w=16, kernel=3, padding=1, groups=32)
    assert op.flops == 2 * 9 * 32 * 16 * 16 == 147_456
    # weights 32 * (32/32) * 9 = 288; in and out 32*16*16 = 8192 each; bf16
    assert op.bytes == (8192 + 288 + 8192) * 2


# ---- attention --------------------------------------------------------------------------


def test_attention_non_causal():
    op = ops.attention(batch=2, q_len=1024, kv_len=1024, heads=16, kv_heads=16, head_dim=128,
                       causal=False)
    assert op.score_pairs == 1024 * 1024
    # QK^T and PV: each 2*d FLOPs per (query, key) pair -> 4 * b * h * q * kv * d
    assert op.matmul_flops == 4 * 2 * 16 * 1024 * 1024 * 128 == 17_179_869_184
    # online softmax: 5 FLOPs per score (max, subtract, exp, sum, scale)
    assert op.flops == 17_179_869_184 + 5 * 2 * 16 * 1024 * 1024


def test_attention_causal_prefill_pairs():
    op = ops.attention(batch=1, q_len=1024, kv_len=1024, heads=8, kv_heads=8, head_dim=64)
    # query i (1-based) sees i keys: sum_{i=1}^{1024} i = 1024 * 1025 / 2
    assert op.score_pairs == 524_800
    assert op.matmul_flops == 4 * 8 * 524_800 * 64


def test_attention_chunked_prefill_pairs():
    # 512 new queries at the end of a 2048 context: query i (1-based) sees 1536 + i keys
    op = ops.attention(batch=1, q_len=512, kv_len=2048, heads=1, kv_heads=1, head_dim=128)
    assert op.score_pairs == 512 * 1536 + 512 * 513 / 2 == 917_760


def test_attention_decode_pairs():
    # one new token attends to all kv_len cached keys, causal or not
    causal = ops.attention(batch=4, q_len=1, kv_len=4096, heads=32, kv_heads=8, head_dim=128)
    full = ops.attention(batch=4, q_len=1, kv_len=4096, heads=32, kv_heads=8, head_dim=128,
                         causal=False)
    assert causal.score_pairs == full.score_pairs == 4096
    assert causal.matmul_flops == 4 * 4 * 32 * 4096 * 128


def test_attention_gqa_bytes():
    # Q and O: 2 * b * q * heads * d = 2 * 1 * 1 * 32 * 128 = 8_192 elements
    # K and V: 2 * b * kv * kv_heads * d = 2 * 1 * 4096 * 8 * 128 = 8_388_608 elements
    gqa = ops.attention(batch=1, q_len=1, kv_len=4096, heads=32, kv_heads=8, head_dim=128)
    assert gqa.bytes == (8_192 + 8_388_608) * 2 == 16_793_600
    # MHA reads 4x the KV cache: 2 * 4096 * 32 * 128 = 33_554_432 elements
    mha = ops.attention(batch=1, q_len=1, kv_len=4096, heads=32, kv_heads=32, head_dim=128)
    assert mha.bytes == (8_192 + 33_554_432) * 2


def test_attention_backward_factors():
    # FlashAttention-2 backward: 5 matmuls against 2 forward (2.5x), softmax work 2x,
    # reads q, k, v, o, dO and writes dq, dk, dv: 2.5x the forward tensors
    fwd = ops.attention(batch=1, q_len=256, kv_len=256, heads=4, kv_heads=4, head_dim=64)
    bwd = ops.attention(batch=1, q_len=256, kv_len=256, heads=4, kv_heads=4, head_dim=64,
                        backward=True)
    assert bwd.matmul_flops == 2.5 * fwd.matmul_flops
    assert bwd.softmax_flops == 2 * fwd.softmax_flops
    assert bwd.bytes == 2.5 * fwd.bytes


# ---- vector and memory ops --------------------------------------------------------------


def test_elementwise_add():
    # c = a + b over 1M bf16 elements: 1 FLOP each, read 2 tensors, write 1
    op = ops.elementwise(1_000_000, fn="add", inputs=2, outputs=1)
    assert op.flops == 1_000_000
    assert op.bytes == 3 * 1_000_000 * 2


def test_elementwise_copy_has_no_flops():
    op = ops.elementwise(4096, fn="copy", dtype="fp32")
    assert op.flops == 0
    assert op.bytes == 2 * 4096 * 4


def test_softmax():
    op = ops.softmax(rows=4096, cols=1024, dtype="fp32")
    assert op.bytes == 2 * 4096 * 1024 * 4 == 33_554_432  # read x, write y
    assert op.flops == 5 * 4096 * 1024  # max, subtract, exp, sum, divide


def test_layernorm_bytes():
    op = ops.layernorm(rows=8192, cols=4096)
    assert op.bytes == 2 * 8192 * 4096 * 2 == 134_217_728  # read x, write y, bf16


def test_rmsnorm_bytes():
    op = ops.rmsnorm(rows=32, cols=8192, dtype="fp32")
    assert op.bytes == 2 * 32 * 8192 * 4


def test_reduce_bytes():
    # read rows x cols, write one value per row
    op = ops.reduce(rows=1000, cols=512, dtype="fp32")
    assert op.bytes == (1000 * 512 + 1000) * 4


def test_embedding_bag():
    # 8 tables, batch 512, 20 lookups each, 64-wide fp32 rows
    op = ops.embedding_bag(num_embeddings=1_000_000, dim=64, batch=512, pooling=20, tables=8)
    # gathered: 8 * 512 * 20 rows = 81_920 rows * 64 * 4 B = 20_971_520
    # pooled output: 8 * 512 * 64 * 4 B = 1_048_576
    assert op.bytes == 20_971_520 + 1_048_576
    assert op.flops == 8 * 512 * 20 * 64  # one add per gathered element
    assert op.table_bytes == 8 * 1_000_000 * 64 * 4


# ---- collectives ------------------------------------------------------------------------


def test_all_reduce_wire_bytes():
    # ring all-reduce sends 2(n-1)/n of the buffer: 2 * 7/8 * 2 MiB
    op = ops.all_reduce(elements=2**20, devices=8)
    assert op.bytes == 2**20 * 2
    assert op.wire_bytes == 2 * 7 / 8 * 2_097_152 == 3_670_016
    assert op.flops == 2**20 * 7 / 8  # each device reduces (n-1)/n of the elements


@pytest.mark.parametrize("make", [ops.all_gather, ops.reduce_scatter, ops.all_to_all])
def test_one_pass_collectives_wire_bytes(make):
    # all-gather, reduce-scatter, all-to-all: (n-1)/n of the full buffer per device
    op = make(elements=2**20, devices=8)
    assert op.wire_bytes == 7 / 8 * 2_097_152 == 1_835_008


def test_collective_flops_only_for_reductions():
    assert ops.all_gather(1024, 4).flops == 0
    assert ops.all_to_all(1024, 4).flops == 0
    assert ops.reduce_scatter(1024, 4).flops == 1024 * 3 / 4


def test_two_device_all_reduce():
    # n = 2: each device sends half its buffer twice = the whole buffer
    op = ops.all_reduce(elements=1000, devices=2, dtype="fp32")
    assert op.wire_bytes == 4000


# ---- identity ---------------------------------------------------------------------------


def test_ops_are_frozen():
    op = ops.matmul(8, 8, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.m = 16  # type: ignore[misc]


def test_equal_ops_hash_equal_and_name_is_not_identity():
    a = Matmul(m=64, n=128, k=256, name="q_proj")
    b = Matmul(m=64, n=128, k=256, name="k_proj")
    c = Matmul(m=64, n=128, k=256)
    assert a == b == c
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c}) == 1
    assert {a: 1}[b] == 1


def test_different_ops_are_unequal():
    base = Matmul(m=64, n=128, k=256)
    assert base != Matmul(m=64, n=128, k=512)
    assert base != Matmul(m=64, n=128, k=256, dtype="fp8_e4m3")
    assert base != Matmul(m=64, n=128, k=256, batch=2)
    # same fields, different kind
    assert AllReduce(elements=8, devices=2) != AllGather(elements=8, devices=2)


# ---- describe <-> parse_op --------------------------------------------------------------

ROUND_TRIP = [
    ops.matmul(4096, 4096, 4096),
    ops.matmul(7, 3, 5, batch=12, dtype="fp8_e5m2"),
    ops.conv2d(batch=1, in_ch=3, out_ch=64, h=224, w=224, kernel=7, stride=2, padding=3),
    ops.conv2d(batch=8, in_ch=32, out_ch=32, h=16, w=16, groups=32, dtype="int8"),
    ops.attention(batch=2, q_len=1, kv_len=4096, heads=32, kv_heads=8, head_dim=128),
    ops.attention(batch=2, q_len=512, kv_len=512, heads=8, kv_heads=8, head_dim=64,
                  causal=False, backward=True),
    ops.elementwise(1000, fn="gelu", inputs=1, outputs=1, dtype="fp32"),
    ops.softmax(10, 20),
    ops.layernorm(10, 20),
    ops.rmsnorm(10, 20),
    ops.reduce(10, 20, fn="max"),
    ops.embedding_bag(num_embeddings=1000, dim=64, batch=32, pooling=4, tables=3),
    ops.all_reduce(1 << 20, 8),
    ops.all_gather(1 << 20, 8),
    ops.reduce_scatter(1 << 20, 8),
    ops.all_to_all(1 << 20, 8),
]


@pytest.mark.parametrize("op", ROUND_TRIP, ids=[o.kind.value for o in ROUND_TRIP])
def test_describe_round_trips(op):
    back = parse_op(op.describe())
    assert back == op
    assert type(back) is type(op)


def test_describe_text():
    assert ops.matmul(4096, 4096, 4096).describe() == (
        "matmul dtype=bf16 m=4096 n=4096 k=4096 batch=1")
    assert ops.all_reduce(16, 4, name="grads").describe() == (
        "all_reduce dtype=bf16 elements=16 devices=4")


def test_matmul_out_dtype_defaults_to_dtype_and_round_trips():
    """An fp8 GEMM writing bf16 (TensorRT-LLM's fp8 Linear) says so and reads back; its
    bytes count C at 2 bytes an element."""
    op = ops.matmul(64, 32, 16, "fp8_e4m3", out_dtype="bf16")
    assert op.describe() == "matmul dtype=fp8_e4m3 m=64 n=32 k=16 batch=1 out_dtype=bf16"
    assert ops.parse_op(op.describe()) == op
    assert op.bytes == 64 * 16 + 16 * 32 + 64 * 32 * 2
    assert ops.matmul(4, 4, 4).out_dtype == "bf16"
    with pytest.raises(OpSyntaxError):
        ops.matmul(4, 4, 4, out_dtype="fp7")


# ---- constructor validation -------------------------------------------------------------


def test_constructor_rejects_zero():
    with pytest.raises(OpSyntaxError) as info:
        Matmul(m=0, n=1, k=1)
    assert str(info.value) == "matmul: m must be a positive integer, got 0"


def test_constructor_rejects_bool_as_int():
    with pytest.raises(OpSyntaxError) as info:
        Matmul(m=True)  # type: ignore[arg-type]
    assert str(info.value) == "matmul: m must be a positive integer, got True"


def test_conv_padding_may_be_zero_not_negative():
    assert Conv2d(padding=0).padding == 0
    with pytest.raises(OpSyntaxError) as info:
        Conv2d(padding=-1)
    assert str(info.value) == "conv2d: padding must be a non-negative integer, got -1"


def test_attention_heads_multiple_of_kv_heads():
    with pytest.raises(OpSyntaxError) as info:
        Attention(heads=32, kv_heads=5)
    assert str(info.value) == "attention: heads=32 must be a multiple of kv_heads=5"


def test_elementwise_unknown_fn():
    with pytest.raises(OpSyntaxError) as info:
        Elementwise(fn="foo")
    assert str(info.value) == (
        "elementwise: unknown fn 'foo'; expected one of add, mul, sub, div, max, copy, cast, "
        "relu, gelu, silu, swiglu, tanh, exp, rope, dropout, residual_add, bias_add, scale, "
        "adamw")


def test_unknown_dtype_in_constructor():
    with pytest.raises(OpSyntaxError) as info:
        ops.matmul(1, 1, 1, dtype="fp4")
    assert str(info.value) == (
        "unknown dtype 'fp4'; expected one of fp32, tf32, bf16, fp16, fp8_e4m3, fp8_e5m2, int8")
