"""Workload graphs: LLMs from Hugging Face configs, DLRM, ResNet-50, ViT, and the default suite.

>>> from chipforge.workloads import load_llm_config, llm_decode
>>> cfg = load_llm_config("llama-3.1-8b")
>>> cfg.param_count()
8030261248
>>> llm_decode(cfg, batch=32, context_len=2048).items
32
"""

from chipforge.workloads._dlrm import dlrm
from chipforge.workloads._hf_config import LLMConfig, llm_config_names, load_llm_config
from chipforge.workloads._llm import llm_decode, llm_prefill
from chipforge.workloads._llm_train import llm_train_step
from chipforge.workloads._memory import (
    MAX_CHIPS,
    USABLE_MEMORY_FRACTION,
    LLMMemory,
    MemoryFootprint,
    MemoryModel,
    fit_split,
    memory_footprint,
    memory_model,
)
from chipforge.workloads._suite import Workload, get_workload, workload_names, workload_suite
from chipforge.workloads._vision import resnet50
from chipforge.workloads._vit import vit, vit_b16

__all__ = [
    "MAX_CHIPS", "USABLE_MEMORY_FRACTION", "LLMConfig", "LLMMemory", "MemoryFootprint",
    "MemoryModel", "Workload", "dlrm", "fit_split", "get_workload", "llm_config_names",
    "llm_decode", "llm_prefill", "llm_train_step", "load_llm_config", "memory_footprint",
    "memory_model", "resnet50", "vit", "vit_b16", "workload_names", "workload_suite",
]
