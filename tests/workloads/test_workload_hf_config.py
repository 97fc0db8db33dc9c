"""LLMConfig.from_hf: field names (transformers v4 and v5), exact parameter counts, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chipforge.errors import WorkloadError
from chipforge.workloads import LLMConfig, llm_config_names, load_llm_config

CONFIGS = Path(__file__).parents[2] / "src" / "chipforge" / "workloads" / "configs"

LLAMA3_ROPE = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192, "rope_type": "llama3"}


def llama_v4(hidden: int, ffn: int, layers: int, heads: int) -> dict:
    """A transformers-v4 Llama 3.1 config written by hand (torch_dtype, rope_theta)."""
    return {"model_type": "llama", "hidden_size": hidden, "intermediate_size": ffn,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "rope_scaling": dict(LLAMA3_ROPE),
            "tie_word_embeddings": False, "torch_dtype": "bfloat16", "hidden_act": "silu"}


def to_v5(cfg: dict) -> dict:
    """The transformers-v5 spelling: rope_parameters holds rope_theta; dtype for torch_dtype."""
    out = {k: v for k, v in cfg.items() if k not in ("rope_theta", "rope_scaling", "torch_dtype")}
    out["rope_parameters"] = {**cfg["rope_scaling"], "rope_theta": cfg["rope_theta"]}
    out["dtype"] = cfg["torch_dtype"]
    return out


# Published / Hugging Face parameter counts (model cards, safetensors metadata).
@pytest.mark.parametrize("name, params", [
    ("llama-3.1-8b", 8_030_261_248),
    ("llama-3.1-70b", 70_553_706_496),
    ("mixtral-8x7b", 46_702_792_704),
])
def test_shipped_param_counts_exact(name: str, params: int) -> None:
    assert load_llm_config(name).param_count() == params


def test_mixtral_active_params_about_12_9b() -> None:
    # Mistral AI: "12.9B active parameters per token" (2 of 8 experts)
    active = load_llm_config("mixtral-8x7b").active_param_count()
    assert active == pytest.approx(12.9e9, rel=0.005)


def test_dense_active_equals_total() -> None:
    cfg = load_llm_config("llama-3.1-8b")
    assert cfg.active_param_count() == cfg.param_count() and not cfg.is_moe


def test_shipped_layouts_differ_and_parse_like_hand_written() -> None:
    raw70 = json.loads((CONFIGS / "llama-3.1-70b.json").read_text())
    raw8 = json.loads((CONFIGS / "llama-3.1-8b.json").read_text())
    assert "rope_parameters" in raw70 and "dtype" in raw70 and "rope_theta" not in raw70
    assert "rope_theta" in raw8 and "torch_dtype" in raw8 and "rope_parameters" not in raw8
    hand70 = llama_v4(8192, 28672, 80, 64)
    hand8 = llama_v4(4096, 14336, 32, 32)
    assert load_llm_config("llama-3.1-70b") == LLMConfig.from_hf(hand70)  # v5 file, v4 dict
    assert load_llm_config("llama-3.1-8b") == LLMConfig.from_hf(to_v5(hand8))  # v4 file, v5
    assert LLMConfig.from_hf(hand8) == LLMConfig.from_hf(to_v5(hand8))


def test_fields_read() -> None:
    cfg = load_llm_config("llama-3.1-70b")
    assert (cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim) == (
        8192, 80, 64, 8, 128)
    assert cfg.rope_theta == 500000.0 and dict(cfg.rope_scaling)["rope_type"] == "llama3"
    assert cfg.dtype == "bf16" and cfg.name == "llama-3.1-70b"
    mix = load_llm_config("mixtral-8x7b")
    assert (mix.num_experts, mix.experts_per_token, mix.moe_layers) == (8, 2, 32)
    assert mix.rope_theta == 1e6 and mix.rope_scaling == () and mix.sliding_window is None


def test_defaults_kv_heads_and_head_dim() -> None:
    cfg = LLMConfig.from_hf({"hidden_size": 512, "intermediate_size": 1024,
                             "num_hidden_layers": 2, "num_attention_heads": 8,
                             "vocab_size": 1000, "head_dim": None})
    assert cfg.num_kv_heads == 8 and cfg.head_dim == 64 and cfg.dtype == "bf16"


def test_qwen2_7b_exact_with_qkv_bias() -> None:
    # Qwen/Qwen2-7B config.json; HF reports 7,615,616,512 parameters (q/k/v carry biases)
    cfg = LLMConfig.from_hf({
        "model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
        "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
        "vocab_size": 152064, "max_position_embeddings": 131072, "rope_theta": 1000000.0,
        "sliding_window": 131072, "use_sliding_window": False, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "hidden_act": "silu"})
    assert cfg.qkv_bias and not cfg.o_bias and cfg.sliding_window is None
    assert cfg.param_count() == 7_615_616_512


def test_qwen_moe_names() -> None:
    # Qwen/Qwen1.5-MoE-A2.7B: 14.3B total, 2.7B activated (Qwen blog, model card)
    cfg = LLMConfig.from_hf({
        "model_type": "qwen2_moe", "hidden_size": 2048, "intermediate_size": 5632,
        "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 16,
        "vocab_size": 151936, "num_experts": 60, "num_experts_per_tok": 4,
        "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
        "decoder_sparse_step": 1, "mlp_only_layers": [], "tie_word_embeddings": False})
    assert cfg.moe_layers == 24
    assert cfg.param_count() == pytest.approx(14.3e9, rel=0.005)
    assert cfg.active_param_count() == pytest.approx(2.7e9, rel=0.01)


def test_tied_embeddings_counted_once() -> None:
    base = llama_v4(4096, 14336, 32, 32)
    tied = LLMConfig.from_hf({**base, "tie_word_embeddings": True})
    assert LLMConfig.from_hf(base).param_count() - tied.param_count() == 128256 * 4096


def test_legacy_rope_type_spelling() -> None:
    base = llama_v4(4096, 14336, 32, 32)
    old = dict(base["rope_scaling"])
    old["type"] = old.pop("rope_type")
    assert LLMConfig.from_hf({**base, "rope_scaling": old}) == LLMConfig.from_hf(base)


def test_names_listed() -> None:
    assert set(llm_config_names()) >= {"llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b"}


def test_load_by_path(tmp_path: Path) -> None:
    path = tmp_path / "my-model.json"
    path.write_text(json.dumps(llama_v4(4096, 14336, 32, 32)))
    cfg = load_llm_config(path)
    assert cfg.name == "my-model" and cfg.param_count() == 8_030_261_248


def _err(data: dict, tmp_path: Path, fname: str = "llama-8b.json") -> str:
    path = tmp_path / fname
    path.write_text(json.dumps(data))
    with pytest.raises(WorkloadError) as info:
        LLMConfig.from_hf(path)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_missing_field_names_file_and_field(tmp_path: Path) -> None:
    data = llama_v4(4096, 14336, 32, 32)
    del data["hidden_size"]
    msg = _err(data, tmp_path)
    assert msg == "llama-8b.json: missing field 'hidden_size' (expected a positive int)"


@pytest.mark.parametrize("field, value, expected", [
    ("num_hidden_layers", "32", "a positive int"),
    ("vocab_size", 0, "a positive int"),
    ("intermediate_size", 14336.0, "a positive int"),
    ("tie_word_embeddings", "no", "true or false"),
    ("rope_theta", "big", "a number"),
    ("torch_dtype", "float8", "one of"),
    ("model_type", "t5", "one of"),
    ("hidden_act", "gelu", "'silu'"),
    ("num_key_value_heads", 5, "divisor"),
    ("rope_scaling", [1], "an object"),
])
def test_bad_field(tmp_path: Path, field: str, value: object, expected: str) -> None:
    msg = _err({**llama_v4(4096, 14336, 32, 32), field: value}, tmp_path)
    assert msg.startswith("llama-8b.json: ") and repr(field) in msg
    assert repr(value) in msg or str(value) in msg
    assert expected in msg


def test_v5_rope_parameters_without_theta(tmp_path: Path) -> None:
    data = to_v5(llama_v4(4096, 14336, 32, 32))
    del data["rope_parameters"]["rope_theta"]
    assert "rope_theta" in _err(data, tmp_path)


def test_bad_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{\"hidden_size\": 4096,,}")
    with pytest.raises(WorkloadError, match=r"broken\.json: invalid JSON at line 1"):
        LLMConfig.from_hf(bad)
    with pytest.raises(WorkloadError, match="cannot read file"):
        LLMConfig.from_hf(tmp_path / "nope.json")
    with pytest.raises(WorkloadError, match="top level is list"):
        (tmp_path / "list.json").write_text("[]")
        LLMConfig.from_hf(tmp_path / "list.json")


def test_unknown_name_lists_shipped() -> None:
    with pytest.raises(WorkloadError, match=r"one of: .*llama-3\.1-8b"):
        load_llm_config("llama-9000")
    with pytest.raises(WorkloadError, match="expected a config dict"):
        LLMConfig.from_hf(42)  # type: ignore[arg-type]


def test_direct_construction_fills_moe_defaults_and_checks() -> None:
    cfg = LLMConfig(hidden_size=4096, intermediate_size=14336, num_layers=32, num_heads=32,
                    num_kv_heads=8, head_dim=128, vocab_size=32000, num_experts=8,
                    experts_per_token=2)
    assert cfg.moe_layers == 32 and cfg.moe_intermediate_size == 14336
    assert cfg.param_count() == load_llm_config("mixtral-8x7b").param_count()
    with pytest.raises(WorkloadError, match=r"LLMConfig: hidden_size=0; expected a positive"):
        LLMConfig(hidden_size=0, intermediate_size=1, num_layers=1, num_heads=1,
                  num_kv_heads=1, head_dim=1, vocab_size=1)
    with pytest.raises(WorkloadError, match=r"experts_per_token=0; expected 1\.\.8"):
        LLMConfig(hidden_size=8, intermediate_size=8, num_layers=1, num_heads=1,
                  num_kv_heads=1, head_dim=8, vocab_size=8, num_experts=8)


def test_sparse_step_and_dense_only_layers() -> None:
    base = {"model_type": "qwen2_moe", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 4, "num_attention_heads": 4, "vocab_size": 100,
            "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}
    assert LLMConfig.from_hf({**base, "decoder_sparse_step": 2}).moe_layers == 2
    assert LLMConfig.from_hf({**base, "mlp_only_layers": [0]}).moe_layers == 3
    dense = LLMConfig.from_hf({**base, "mlp_only_layers": [0, 1, 2, 3]})
    assert dense.moe_layers == 0 and not dense.is_moe


def test_checkpoint_folder_name(tmp_path: Path) -> None:
    folder = tmp_path / "Meta-Llama-3.1-8B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(llama_v4(4096, 14336, 32, 32)))
    assert load_llm_config(folder / "config.json").name == "Meta-Llama-3.1-8B"
