"""GPT-3-style configs (GPT-2 and BLOOM field names): parameter counts against the papers."""

from __future__ import annotations

import pytest

from chipforge.errors import WorkloadError
from chipforge.workloads import LLMConfig, llm_prefill, load_llm_config

# source: Narayanan et al. 2021 (arXiv 2104.04473) Table 1, "Number of parameters (billion)"
NARAYANAN_PARAMS_B = {"megatron-gpt-1.7b": 1.7, "megatron-gpt-3.6b": 3.6,
                      "megatron-gpt-7.5b": 7.5, "megatron-gpt-18b": 18.4,
                      "megatron-gpt-39b": 39.1, "megatron-gpt-76b": 76.1,
                      "megatron-gpt-145b": 145.6, "megatron-gpt-310b": 310.1,
                      "megatron-gpt-530b": 529.6, "megatron-gpt-1t": 1008.0}


@pytest.mark.parametrize("name", sorted(NARAYANAN_PARAMS_B))
def test_megatron_params_match_the_paper(name: str) -> None:
    cfg = load_llm_config(name)
    assert cfg.param_count() / 1e9 == pytest.approx(NARAYANAN_PARAMS_B[name], abs=0.051)
    # the paper's formula P = 12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)), plus the final
    # LayerNorm (2h) it leaves out
    h, n, v, s = cfg.hidden_size, cfg.num_layers, cfg.vocab_size, 2048
    formula = 12 * n * h * h * (1 + 13 / (12 * h) + (v + s) / (12 * n * h))
    assert cfg.param_count() == round(formula) + 2 * h


def test_bloom_and_llama_405b() -> None:
    # source: BigScience BLOOM model card: 176,247,271,424 parameters (incl. the 2h of the
    # embedding LayerNorm, which the config does not count)
    bloom = load_llm_config("bloom-176b")
    assert bloom.param_count() + 2 * 14336 == 176_247_271_424
    # source: Llama 3.1 405B, 405.85 B parameters (meta-llama/Llama-3.1-405B safetensors index)
    assert load_llm_config("llama-3.1-405b").param_count() / 1e9 == pytest.approx(405.85, abs=0.01)


def test_gpt_graph_has_gelu_mlp_and_layernorm() -> None:
    g = llm_prefill(load_llm_config("megatron-gpt-1.7b"), batch=1, seq_len=128)
    names = {op.name for op, _ in g.nodes}
    assert {"fc1", "gelu", "fc2"} <= names and "rope" not in names
    assert "gate_up_proj" not in names


def test_gpt2_rejects_non_gelu() -> None:
    with pytest.raises(WorkloadError, match="activation_function"):
        LLMConfig.from_hf({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4,
                           "vocab_size": 100, "activation_function": "relu"})
