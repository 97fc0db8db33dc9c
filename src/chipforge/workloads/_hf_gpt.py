"""GPT-3-style decoder configs from Hugging Face ``config.json``: GPT-2 and BLOOM field names.

These models (GPT-2/3, the Megatron-LM GPT runs of 2021-22, BLOOM) use LayerNorm, a
non-gated GeLU MLP of ``4 * hidden`` (fc1, fc2), biases on every linear layer, multi-head
attention (no GQA) and tied input/output embeddings. GPT-2 adds learned absolute positions;
BLOOM uses ALiBi (no position parameters; its extra embedding LayerNorm, 2h parameters, is
not counted).
"""

from __future__ import annotations

from typing import Any

from chipforge.errors import WorkloadError
from chipforge.workloads._hf_fields import Fields

GPT_MODEL_TYPES = ("gpt2", "bloom")
GELU_NAMES = ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh")


def gpt_fields(f: Fields, model_type: str) -> dict[str, Any]:
    """LLMConfig keyword arguments for a GPT-2 or BLOOM config."""
    if model_type == "gpt2":
        hidden, layers = f.integer("n_embd"), f.integer("n_layer")
        heads, positions = f.integer("n_head"), f.integer("n_positions", 1024)
        act = f.text("activation_function", "gelu_new")
        intermediate = f.integer("n_inner", 4 * hidden)
        learned = True
    else:  # bloom: "n_embed" in the first releases, "hidden_size" later
        hidden = f.integer("hidden_size", None) or f.integer("n_embed")
        layers = f.integer("n_layer")
        heads = f.integer("num_attention_heads", None) or f.integer("n_head")
        positions, act, intermediate, learned = f.integer("seq_length", 2048), "gelu", \
            4 * hidden, False
    if act not in GELU_NAMES:
        raise WorkloadError(f"{f.src}: field 'activation_function' is {act!r}; expected one "
                            f"of {', '.join(GELU_NAMES)} (a GeLU MLP)")
    if hidden % heads:
        raise WorkloadError(f"{f.src}: hidden size {hidden} is not divisible by the head "
                            f"count {heads}; expected a multiple")
    return dict(hidden_size=hidden, intermediate_size=intermediate, num_layers=layers,
                num_heads=heads, num_kv_heads=heads, head_dim=hidden // heads,
                vocab_size=f.integer("vocab_size"), max_position_embeddings=positions,
                tie_word_embeddings=f.flag("tie_word_embeddings", True),
                rms_norm_eps=f.number("layer_norm_epsilon", 1e-5), dtype=f.dtype(),
                model_type=model_type, qkv_bias=True, o_bias=True, mlp_bias=True,
                mlp_gated=False, norm="layernorm", position_embeddings=learned)
