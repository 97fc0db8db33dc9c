"""The default suite: names, phases, dtype override, lookup errors."""

from __future__ import annotations

import pytest

from chipforge.errors import WorkloadError
from chipforge.workloads import Workload, get_workload, workload_names, workload_suite

EXPECTED = ("llama3.1-8b-train", "llama3.1-70b-prefill", "llama3.1-70b-decode",
            "llama3.1-8b-decode", "mixtral-8x7b-decode", "dlrm-inference",
            "resnet50-inference", "vit-b16-inference")


def test_suite_rows() -> None:
    suite = workload_suite()
    assert tuple(w.name for w in suite) == EXPECTED == workload_names()
    for w in suite:
        assert isinstance(w, Workload) and w.dtype == "bf16" and w.description
        assert w.graph.flops > 0 and w.graph.items > 0
        assert len(w.graph) < 200
        unit = "tokens" if w.name.startswith(("llama", "mixtral")) else "samples"
        assert w.graph.item_unit == unit
    phases = {w.name: w.phase for w in suite}
    assert phases["llama3.1-8b-train"] == "train" and phases["llama3.1-70b-decode"] == "decode"


def test_dtype_override() -> None:
    suite = workload_suite(dtype="int8")
    assert {w.dtype for w in suite if w.phase != "train"} == {"int8"}
    assert get_workload("llama3.1-8b-train", dtype="int8").dtype == "bf16"
    assert get_workload("llama3.1-8b-train", dtype="fp8_e4m3").dtype == "fp8_e4m3"
    assert get_workload("resnet50-inference", "fp16").dtype == "fp16"


def test_lookup_case_insensitive() -> None:
    w = get_workload("ViT-B16-Inference")
    assert w.name == "vit-b16-inference" and w.graph.items == 256


def test_errors() -> None:
    with pytest.raises(WorkloadError, match=r"unknown workload 'gpt-5'; expected one of: "
                                            r"llama3\.1-8b-train, .*vit-b16-inference"):
        get_workload("gpt-5")
    with pytest.raises(WorkloadError, match=r"workload_suite: dtype='int4'"):
        workload_suite(dtype="int4")
