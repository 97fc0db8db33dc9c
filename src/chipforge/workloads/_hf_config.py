"""Decoder-only LLM configs read from Hugging Face ``config.json`` files (no weights needed).

Reads the Llama / Mistral / Mixtral / Qwen2 / Qwen2-MoE / Qwen3 field names in both the
transformers v4 layout (``rope_theta``, ``rope_scaling``, ``torch_dtype``) and the v5 one
(``rope_parameters`` holding ``rope_theta``, and ``dtype``), and the GPT-3-style models
(GPT-2 and BLOOM field names: LayerNorm, a non-gated GeLU MLP, biases; ``_hf_gpt``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from chipforge.errors import WorkloadError
from chipforge.workloads._common import pos_int
from chipforge.workloads._hf_fields import Fields, freeze, read_json
from chipforge.workloads._hf_gpt import GPT_MODEL_TYPES, gpt_fields

MODEL_TYPES = ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe")


@dataclass(frozen=True)
class LLMConfig:
    """The shapes that decide a decoder-only transformer's FLOPs, bytes and parameters."""

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: tuple = ()  # frozen (key, value) pairs, rope_type "default" dropped
    dtype: str = "bf16"
    model_type: str = "llama"
    num_experts: int = 0  # routed experts; 0 = dense MLP
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0  # Qwen2-MoE shared expert (with a sigmoid gate)
    moe_layers: int = 0  # how many of num_layers use the MoE MLP
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False  # Qwen3 RMSNorm over head_dim on q and k
    sliding_window: int | None = None
    mlp_gated: bool = True  # SwiGLU (gate, up, down); False: GPT's GeLU MLP (fc1, fc2)
    norm: str = "rmsnorm"  # or "layernorm" (GPT-2/3, BLOOM: a weight and a bias)
    position_embeddings: bool = False  # learned absolute positions (GPT-2/3), not RoPE
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = f"LLMConfig {self.name}".rstrip()
        for key in ("hidden_size", "intermediate_size", "num_layers", "num_heads",
                    "num_kv_heads", "head_dim", "vocab_size", "max_position_embeddings"):
            pos_int(where, key, getattr(self, key))
        if self.num_heads % self.num_kv_heads:
            raise WorkloadError(f"{where}: num_kv_heads={self.num_kv_heads}; expected a "
                                f"divisor of num_heads={self.num_heads}")
        if self.num_experts:  # built by hand: MoE in every layer, experts as wide as the MLP
            if not 1 <= self.experts_per_token <= self.num_experts:
                raise WorkloadError(f"{where}: experts_per_token={self.experts_per_token}; "
                                    f"expected 1..{self.num_experts}")
            if not self.moe_layers:
                object.__setattr__(self, "moe_layers", self.num_layers)
            if not self.moe_intermediate_size:
                object.__setattr__(self, "moe_intermediate_size", self.intermediate_size)
        if self.norm not in ("rmsnorm", "layernorm"):
            raise WorkloadError(f"{where}: norm={self.norm!r}; expected 'rmsnorm' or "
                                "'layernorm'")
        if not 0 <= self.moe_layers <= self.num_layers:
            raise WorkloadError(f"{where}: moe_layers={self.moe_layers}; expected "
                                f"0..{self.num_layers}")

    @classmethod
    def from_hf(cls, source: dict[str, Any] | str | Path, name: str = "") -> LLMConfig:
        """Parse a config.json dict or file; errors name the file, field, value and expectation."""
        if isinstance(source, dict):
            data, src = source, name or "config"
        elif isinstance(source, str | Path):
            path = Path(source)
            data, src = read_json(path), path.name
            # a checkpoint folder's config.json is named after the folder
            name = name or (path.parent.name if path.stem == "config" else path.stem)
        else:
            raise WorkloadError(f"LLMConfig.from_hf: got {type(source).__name__}; "
                                "expected a config dict or a path to config.json")
        return _parse(Fields(data, src), name)

    @property
    def is_moe(self) -> bool:
        return self.moe_layers > 0

    @property
    def dense_layers(self) -> int:
        return self.num_layers - self.moe_layers

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    def attention_params(self) -> int:
        h = self.hidden_size
        params = h * (self.q_dim + 2 * self.kv_dim) + self.q_dim * h
        params += (self.q_dim + 2 * self.kv_dim) * self.qkv_bias + h * self.o_bias
        return params + 2 * self.head_dim * self.qk_norm

    @property
    def rotary(self) -> bool:
        """RoPE on q and k (Llama family); GPT-2/3 use learned positions, BLOOM ALiBi."""
        return self.model_type not in GPT_MODEL_TYPES

    @property
    def norm_params(self) -> int:
        """One norm layer: a weight (RMSNorm), plus a bias for LayerNorm."""
        return self.hidden_size * (2 if self.norm == "layernorm" else 1)

    def mlp_params(self, intermediate: int) -> int:
        """One MLP: SwiGLU's gate, up, down matrices (LlamaMLP), or GPT's fc1, fc2."""
        matrices = 3 if self.mlp_gated else 2
        bias = ((matrices - 1) * intermediate + self.hidden_size) * self.mlp_bias
        return matrices * self.hidden_size * intermediate + bias

    def moe_params(self, experts: int) -> int:
        """Router plus ``experts`` routed experts plus the shared expert and its gate."""
        h = self.hidden_size
        params = h * self.num_experts + experts * self.mlp_params(self.moe_intermediate_size)
        if self.shared_expert_intermediate_size:
            params += self.mlp_params(self.shared_expert_intermediate_size) + h
        return params

    def _count(self, experts: int) -> int:
        h = self.hidden_size
        per_layer = self.attention_params() + 2 * self.norm_params  # + the two norms
        total = self.num_layers * per_layer + self.dense_layers * self.mlp_params(
            self.intermediate_size) + self.moe_layers * self.moe_params(experts)
        embeddings = self.embedding_params * (1 if self.tie_word_embeddings else 2)
        positions = self.max_position_embeddings * h * self.position_embeddings
        return total + embeddings + positions + self.norm_params  # + final norm

    def param_count(self) -> int:
        """Exact parameter count, as ``sum(p.numel() for p in model.parameters())``."""
        return self._count(self.num_experts)

    def active_param_count(self) -> int:
        """Parameters one token touches: only ``experts_per_token`` routed experts."""
        return self._count(self.experts_per_token)

    def kv_cache_bytes_per_token(self, itemsize: float = 2.0) -> float:
        return 2.0 * self.num_layers * self.kv_dim * itemsize


def _rope(f: Fields) -> tuple[float, tuple]:
    params = f.mapping("rope_parameters")  # transformers v5
    if params is not None:
        theta = Fields(params, f"{f.src}: rope_parameters").number("rope_theta")
        scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    else:
        theta = f.number("rope_theta", 10000.0)
        scaling = dict(f.mapping("rope_scaling") or {})
        if "type" in scaling:  # pre-4.45 spelling
            scaling.setdefault("rope_type", scaling.pop("type"))
    if scaling.get("rope_type") == "default" and len(scaling) == 1:
        scaling = {}
    return theta, freeze(scaling)


def _parse(f: Fields, name: str) -> LLMConfig:
    model_type = f.text("model_type", "llama")
    if model_type in GPT_MODEL_TYPES:
        return LLMConfig(**gpt_fields(f, model_type), name=name)
    if model_type not in MODEL_TYPES:
        raise WorkloadError(f"{f.src}: field 'model_type' is {model_type!r}; expected one of "
                            f"{', '.join(MODEL_TYPES + GPT_MODEL_TYPES)}")
    act = f.text("hidden_act", "silu")
    if act not in ("silu", "swish"):
        raise WorkloadError(f"{f.src}: field 'hidden_act' is {act!r}; expected 'silu' "
                            "(SwiGLU MLP)")
    hidden, heads = f.integer("hidden_size"), f.integer("num_attention_heads")
    layers = f.integer("num_hidden_layers")
    if f.data.get("head_dim") is None and hidden % heads:
        raise WorkloadError(f"{f.src}: field 'hidden_size' is {hidden}, not divisible by "
                            f"num_attention_heads={heads}; expected a multiple or a 'head_dim'")
    kv_heads = f.integer("num_key_value_heads", heads)
    if heads % kv_heads:
        raise WorkloadError(f"{f.src}: field 'num_key_value_heads' is {kv_heads}; expected a "
                            f"divisor of num_attention_heads={heads}")
    experts = max(f.integer("num_local_experts", 0, low=0), f.integer("num_experts", 0, low=0))
    top_k = f.integer("num_experts_per_tok", 2 if experts else 0, low=0)
    if experts and not 1 <= top_k <= experts:
        raise WorkloadError(f"{f.src}: field 'num_experts_per_tok' is {top_k}; expected "
                            f"1..{experts} (the expert count)")
    moe_layers = 0
    if experts:
        step = f.integer("decoder_sparse_step", 1)
        dense_only = set(f.int_list("mlp_only_layers"))
        moe_layers = sum(1 for i in range(layers)
                         if i not in dense_only and (i + 1) % step == 0)
    intermediate = f.integer("intermediate_size")
    bias = f.data.get("attention_bias")
    qwen2 = model_type.startswith("qwen2")  # Qwen2 attention: q/k/v bias, no o bias
    window = f.integer("sliding_window", None)
    if not f.flag("use_sliding_window", True):
        window = None
    theta, scaling = _rope(f)
    return LLMConfig(
        hidden_size=hidden, intermediate_size=intermediate, num_layers=layers,
        num_heads=heads, num_kv_heads=kv_heads, head_dim=f.integer("head_dim", hidden // heads),
        vocab_size=f.integer("vocab_size"),
        max_position_embeddings=f.integer("max_position_embeddings", 4096),
        tie_word_embeddings=f.flag("tie_word_embeddings", False),
        rms_norm_eps=f.number("rms_norm_eps", 1e-6), rope_theta=theta, rope_scaling=scaling,
        dtype=f.dtype(), model_type=model_type, num_experts=experts if moe_layers else 0,
        experts_per_token=top_k if moe_layers else 0,
        moe_intermediate_size=f.integer("moe_intermediate_size", intermediate),
        shared_expert_intermediate_size=f.integer("shared_expert_intermediate_size", 0, low=0),
        moe_layers=moe_layers,
        qkv_bias=f.flag("attention_bias", False) if bias is not None else qwen2,
        o_bias=f.flag("attention_bias", False), mlp_bias=f.flag("mlp_bias", False),
        qk_norm=model_type.startswith("qwen3"), sliding_window=window, name=name)


def llm_config_names() -> tuple[str, ...]:
    """Names of the configs shipped in ``chipforge/workloads/configs``."""
    folder = resources.files("chipforge.workloads") / "configs"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")))


def load_llm_config(name_or_path: str | Path) -> LLMConfig:
    """A shipped config by name (``"llama-3.1-8b"``) or any config.json path."""
    key = str(name_or_path).lower().removesuffix(".json")
    if key in llm_config_names():
        ref = resources.files("chipforge.workloads") / "configs" / f"{key}.json"
        with resources.as_file(ref) as path:
            return LLMConfig.from_hf(path, name=key)
    path = Path(name_or_path)
    if path.is_file():
        return LLMConfig.from_hf(path)
    raise WorkloadError(f"unknown model {str(name_or_path)!r}; expected a config.json path or "
                        f"one of: {', '.join(llm_config_names())}")
