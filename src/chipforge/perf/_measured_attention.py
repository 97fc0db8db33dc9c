"""What one measured TensorRT-LLM attention call runs, from a row of aiconfigurator's
``context_attention.csv`` / ``generation_attention.csv`` (data/validation/README.md).

aiconfigurator's collector (``collector/trtllm/collect_attn.py``, ai-dynamo/aiconfigurator
@095f58a) times one ``TrtllmAttention.forward`` per CUDA-graph replay on a fused bf16 QKV
input. That call runs:

- QKV pre-processing: RoPE on q and k, the new k and v written to the paged KV cache in
  the cache's element type (quantized when the cache is fp8), q written for the attention
  kernel (in fp8 when the attention runs in fp8);
- context: the fused causal FMHA (fmha_v2). On SM90 a bf16 FMHA over an fp8 cache is not
  built, so every fp8-cache context row runs the fp8 FMHA (fp8 inputs and output);
- generation: one new token per sequence against a cache of ``seq_len + step`` tokens
  (the rows log ``seq_len`` 1 and ``step`` = the cached length); the decode kernel (XQA or
  masked MHA, chosen in ``_attention``) reads the whole cache.
"""

from __future__ import annotations

from chipforge.arch import ChipSpec
from chipforge.ops import Attention, Graph, GraphBuilder, Op, attention, elementwise
from chipforge.perf._attention import decode_kernel, xqa_gmma, xqa_gmma_rope_in_kernel
from chipforge.perf._measured import table_dtype

# the collector builds every attention layer with a GPT-NeoX RoPE over 128 head elements,
# whatever the head size (collect_attn.py: PositionalEmbeddingParams(rope_gpt_neox,
# RopeParams(dim=128)))
COLLECTOR_ROTARY_DIM = 128


def _shape(row: dict[str, str]) -> tuple[int, int, int, int, int]:
    return (int(row["batch_size"]), int(row["seq_len"]), int(row["num_heads"]),
            int(row["num_key_value_heads"]), int(row["head_dim"]))


def _preprocess(tokens: int, heads: int, kv_heads: int, head_dim: int) -> Op:
    """RoPE + KV-cache write: one pass over the fused QKV rows (read bf16, write q, k, v).
    The K/V writes are counted at bf16 width even into an fp8 cache (a slight over-count
    of a pass that is launch-bound for all but the largest rows)."""
    return elementwise(tokens * (heads + 2 * kv_heads) * head_dim, "rope", 1, 1, "bf16",
                       name="qkv preprocessing")


def context_call(row: dict[str, str]) -> Graph:
    """One measured context (prefill) call: QKV pre-processing, then the causal FMHA over
    ``seq_len`` tokens. An fp8 cache means the fp8 FMHA (fp8_e4m3 compute, fp8 cache)."""
    b, seq, heads, kv_heads, dim = _shape(row)
    kv_dtype = table_dtype(row["kv_cache_dtype"])
    dtype = "fp8_e4m3" if kv_dtype.startswith("fp8") else table_dtype(row["attn_dtype"])
    graph = GraphBuilder("context attention")
    graph.add(_preprocess(b * seq, heads, kv_heads, dim))
    graph.add(attention(b, seq, seq, heads, kv_heads, dim, dtype=dtype, causal=True,
                        kv_dtype=kv_dtype, name="context fmha"))
    return graph.build()


def generation_call(row: dict[str, str], chip: ChipSpec) -> Op | Graph:
    """One measured generation (decode) call on ``chip``: decode attention over a cache of
    ``seq_len + step`` tokens, after a QKV pre-processing kernel only where the decode kernel
    does not apply RoPE and append the new K/V itself.

    - masked MHA reads the fused QKV rows itself (TRT-LLM attentionOp.cpp
      fusedQKV_masked_attention_dispatch: params.q/k/v point into the QKV buffer with the
      rotary parameters; the kernel rotates q and k and writes the new K/V to the cache), so
      its call is one kernel;
    - the SM90 QGMMA XQA kernel (fp8 cache under 16-bit attention) applies RoPE and appends
      the new K/V itself (DecoderXQARunner::runImpl: appliesRoPEInXqaKernel only for QGMMA)
      where the rotary dim fits the head (``xqa_gmma_rope_in_kernel``): the collector's
      128-element RoPE does not fit a 64-element head, so those calls run the
      pre-processing kernel first;
    - the SM80-style XQA kernel (mha.cu) reads pre-processed q and a cache that
      invokeQKVPreprocessing has already appended to: two kernels.

    On H100 the one-kernel calls floor at ~5.5 us (fp8 XQA) and ~8-9 us (MMHA), the two-kernel
    bf16 XQA calls at ~10-12 us."""
    b, seq, heads, kv_heads, dim = _shape(row)
    op = generation_attention_op(row)
    kernel = decode_kernel(op, chip)
    if kernel == "mmha" or (xqa_gmma(op, chip, kernel)
                            and xqa_gmma_rope_in_kernel(op, COLLECTOR_ROTARY_DIM)):
        return op
    graph = GraphBuilder("generation attention")
    graph.add(_preprocess(b * seq, heads, kv_heads, dim))
    graph.add(op)
    return graph.build()


def generation_attention_op(row: dict[str, str]) -> Attention:
    """The decode attention op alone of a generation row."""
    b, seq, heads, kv_heads, dim = _shape(row)
    kv_len = seq + int(row["step"])  # the cache holds seq_len + step tokens
    return attention(b, seq, kv_len, heads, kv_heads, dim, dtype=table_dtype(row["attn_dtype"]),
                     causal=True, kv_dtype=table_dtype(row["kv_cache_dtype"]),
                     name="decode attention")
