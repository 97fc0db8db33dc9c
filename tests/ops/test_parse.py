"""Op strings: ``KIND key=value ...``; every malformed string fails with an exact message."""

from __future__ import annotations

import pytest

from chipforge.errors import ChipforgeError, OpSyntaxError
from chipforge.ops import (
    AllReduce,
    Attention,
    Conv2d,
    Elementwise,
    EmbeddingBag,
    Matmul,
    Softmax,
    parse_op,
)

FORM = "'KIND key=value ...', e.g. 'matmul m=4096 n=4096 k=4096 dtype=bf16'"
DTYPES = "fp32, tf32, bf16, fp16, fp8_e4m3, fp8_e5m2, int8"


@pytest.mark.parametrize(("text", "expected"), [
    ("matmul m=4096 n=4096 k=4096 dtype=bf16", Matmul(m=4096, n=4096, k=4096, dtype="bf16")),
    ("matmul m=1 n=2 k=3 batch=4 dtype=int8", Matmul(m=1, n=2, k=3, batch=4, dtype="int8")),
    # defaults: every dimension 1, dtype bf16
    ("matmul", Matmul(m=1, n=1, k=1, batch=1, dtype="bf16")),
    # kind is case-insensitive, extra whitespace is ignored, '_' groups digits (k is given:
    # a partial m, n, k is refused, issue 11 point 9)
    ("  MATMUL   m=4_096\tn=8 k=1 ", Matmul(m=4096, n=8)),
    ("conv2d batch=1 in_ch=3 out_ch=64 h=224 w=224 kh=7 kw=7 stride=2 padding=3",
     Conv2d(batch=1, in_ch=3, out_ch=64, h=224, w=224, kh=7, kw=7, stride=2, padding=3)),
    ("attention batch=1 q_len=1 kv_len=4096 heads=32 kv_heads=8 head_dim=128 causal=false",
     Attention(batch=1, q_len=1, kv_len=4096, heads=32, kv_heads=8, head_dim=128,
               causal=False)),
    ("attention causal=YES backward=1", Attention(causal=True, backward=True)),
    ("attention causal=no backward=0", Attention(causal=False, backward=False)),
    ("elementwise numel=1000 fn=silu inputs=1 outputs=1 dtype=fp32",
     Elementwise(numel=1000, fn="silu", inputs=1, outputs=1, dtype="fp32")),
    ("softmax rows=8 cols=4096", Softmax(rows=8, cols=4096)),
    ("embedding_bag num_embeddings=1000000 dim=128 batch=2048 pooling=1 tables=26 dtype=fp32",
     EmbeddingBag(num_embeddings=1_000_000, dim=128, batch=2048, pooling=1, tables=26,
                  dtype="fp32")),
    ("all_reduce elements=1000000 devices=8", AllReduce(elements=1_000_000, devices=8)),
])
def test_parse_happy_path(text, expected):
    op = parse_op(text)
    assert op == expected
    assert type(op) is type(expected)


def test_parsed_values_have_their_types():
    op = parse_op("attention heads=8 kv_heads=2 causal=false")
    assert op.heads == 8 and type(op.heads) is int
    assert op.causal is False
    assert parse_op("matmul dtype=fp8_e4m3").dtype == "fp8_e4m3"


@pytest.mark.parametrize(("text", "message"), [
    ("", f"empty op string; expected {FORM}"),
    ("   ", f"empty op string; expected {FORM}"),
    ("matmull m=1",
     "unknown op kind 'matmull' in 'matmull m=1'; expected one of matmul, conv2d, attention, "
     "elementwise, reduce, softmax, layernorm, rmsnorm, embedding_bag, all_reduce, all_gather, "
     "reduce_scatter, all_to_all, moe"),
    ("matmul m4096", f"malformed argument 'm4096' in 'matmul m4096'; expected {FORM}"),
    ("matmul =5", f"malformed argument '=5' in 'matmul =5'; expected {FORM}"),
    ("matmul m=", f"malformed argument 'm=' in 'matmul m='; expected {FORM}"),
    ("matmul q=5", "op 'matmul' has no argument 'q'; expected some of dtype, m, n, k, batch, "
     "out_dtype"),
    ("matmul M=5", "op 'matmul' has no argument 'M'; expected some of dtype, m, n, k, batch, "
     "out_dtype"),
    ("matmul m=4k", "op 'matmul': m='4k' is not an integer"),
    ("matmul m=1.5", "op 'matmul': m='1.5' is not an integer"),
    ("matmul m=0", "matmul: m must be a positive integer, got 0"),
    ("matmul m=-3", "matmul: m must be a positive integer, got -3"),
    ("conv2d padding=-1", "conv2d: padding must be a non-negative integer, got -1"),
    ("matmul dtype=fp9", f"op 'matmul': unknown dtype 'fp9'; expected one of {DTYPES}"),
    ("matmul dtype=BF16", f"op 'matmul': unknown dtype 'BF16'; expected one of {DTYPES}"),
    ("attention causal=maybe", "op 'attention': causal='maybe' is not true or false"),
    ("attention heads=32 kv_heads=5", "attention: heads=32 must be a multiple of kv_heads=5"),
    # issue 11, point 9: no silent k=1, no kernel larger than its input, no ragged groups,
    # ASCII digits only, sizes whose FLOPs stay exact floats
    ("matmul m=4096 n=4096", "op 'matmul': k missing in 'matmul m=4096 n=4096'; expected "
                             "m, n, k together (none of them: the unit op), not a default of 1"),
    ("softmax rows=8", "op 'softmax': cols missing in 'softmax rows=8'; expected rows, cols "
                       "together (none of them: the unit op), not a default of 1"),
    ("conv2d in_ch=3 out_ch=64 h=3 w=3 kh=7 kw=7",
     "conv2d: kh=7 exceeds the padded input h=3 + 2 x padding=0; expected kh <= 3"),
    ("conv2d in_ch=3 out_ch=64 h=3 w=3 kh=8 kw=3 padding=2",
     "conv2d: kh=8 exceeds the padded input h=3 + 2 x padding=2; expected kh <= 7"),
    ("conv2d in_ch=6 out_ch=64 h=8 w=8 kh=3 kw=3 groups=4",
     "conv2d: groups=4 does not divide in_ch=6; expected a divisor of both in_ch and out_ch"),
    ("matmul m=\u0664\u0660\u0669\u0666 n=1 k=1",
     "op 'matmul': m='\u0664\u0660\u0669\u0666' is not an integer"),
    ("matmul m=1 n=1 k=100000000000000000000",
     "matmul: k must be at most 2**48 (281,474,976,710,656), got 100000000000000000000"),
])
def test_parse_error_message(text, message):
    with pytest.raises(OpSyntaxError) as info:
        parse_op(text)
    assert str(info.value) == message


def test_parse_error_is_a_chipforge_error():
    with pytest.raises(ChipforgeError):
        parse_op("matmul m=x")


def test_repeated_argument_is_an_error():
    with pytest.raises(OpSyntaxError) as err:
        parse_op("matmul m=4096 m=8")
    assert str(err.value) == "op 'matmul': argument 'm' is given twice in 'matmul m=4096 m=8'"
