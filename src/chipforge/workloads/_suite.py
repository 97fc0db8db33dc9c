"""The default workload suite behind ``chipforge compare`` and the report.

Each row is one step of a representative job; ``chipforge.perf.estimate`` checks its
memory against each chip and splits LLM inference tensor-parallel when it does not fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chipforge.errors import WorkloadError
from chipforge.ops import Graph
from chipforge.workloads._common import check_dtype
from chipforge.workloads._dlrm import dlrm
from chipforge.workloads._hf_config import load_llm_config
from chipforge.workloads._llm import llm_decode, llm_prefill
from chipforge.workloads._llm_train import llm_train_step
from chipforge.workloads._vision import resnet50
from chipforge.workloads._vit import vit_b16


@dataclass(frozen=True)
class Workload:
    """A named graph: ``phase`` is "train", "prefill", "decode" or "inference"."""

    name: str
    graph: Graph
    phase: str
    description: str = ""

    @property
    def dtype(self) -> str:
        return str(self.graph.meta.get("dtype", ""))


_Builder = Callable[[str], Graph]
# name -> (phase, description, builder taking the dtype)
_SUITE: dict[str, tuple[str, str, _Builder]] = {
    "llama3.1-8b-train": (
        "train", "Llama-3.1-8B training step, gbs 256 x seq 4096 (1M tokens), micro-batch 1",
        lambda dt: llm_train_step(load_llm_config("llama-3.1-8b"), 256, 4096, dt,
                                  micro_batch=1)),
    "llama3.1-70b-prefill": (
        "prefill", "Llama-3.1-70B prefill, batch 1 x 4096-token prompt",
        lambda dt: llm_prefill(load_llm_config("llama-3.1-70b"), 1, 4096, dt)),
    "llama3.1-70b-decode": (
        "decode", "Llama-3.1-70B decode, batch 64, context 4096",
        lambda dt: llm_decode(load_llm_config("llama-3.1-70b"), 64, 4096, dt)),
    "llama3.1-8b-decode": (
        "decode", "Llama-3.1-8B decode, batch 32, context 2048",
        lambda dt: llm_decode(load_llm_config("llama-3.1-8b"), 32, 2048, dt)),
    "mixtral-8x7b-decode": (
        "decode", "Mixtral-8x7B decode, batch 32, context 4096",
        lambda dt: llm_decode(load_llm_config("mixtral-8x7b"), 32, 4096, dt)),
    "dlrm-inference": (
        "inference", "DLRM (MLPerf Criteo Terabyte) inference, batch 2048",
        lambda dt: dlrm(2048, dtype=dt)),
    "resnet50-inference": (
        "inference", "ResNet-50 v1.5 inference, batch 256, 224x224",
        lambda dt: resnet50(256, dtype=dt)),
    "vit-b16-inference": (
        "inference", "ViT-B/16 inference, batch 256, 224x224",
        lambda dt: vit_b16(256, dtype=dt)),
}

_TRAIN_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2")


def workload_names() -> tuple[str, ...]:
    return tuple(_SUITE)


def _dtype_for(phase: str, dtype: str | None) -> str:
    if dtype is None:
        return "bf16"
    # an int8 override means quantized inference; training rows stay in bf16
    return "bf16" if phase == "train" and dtype not in _TRAIN_DTYPES else dtype


def get_workload(name: str, dtype: str | None = None) -> Workload:
    """One suite row by name (case-insensitive), optionally in another ``dtype``."""
    if dtype is not None:
        check_dtype("get_workload", dtype)
    key = name.strip().lower()
    if key not in _SUITE:
        raise WorkloadError(f"unknown workload {name!r}; expected one of: "
                            f"{', '.join(_SUITE)}")
    phase, description, build = _SUITE[key]
    return Workload(key, build(_dtype_for(phase, dtype)), phase, description)


def workload_suite(dtype: str | None = None) -> tuple[Workload, ...]:
    """The default suite, bf16 unless ``dtype`` (e.g. "int8", "fp8_e4m3") is given.

    ``dtype`` applies to every row, except that training rows stay bf16 under int8.
    """
    if dtype is not None:
        check_dtype("workload_suite", dtype)
    return tuple(get_workload(name, dtype) for name in _SUITE)
