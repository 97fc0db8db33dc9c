"""The op IR as compiler input: workload ops compile, run, and the engine's public
estimate of each op agrees with the simulated kernel within 5%."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chipforge import estimate, load_chip, ops
from chipforge.compiler import CompileError, compile_graph, kernel_graph_from_ops
from chipforge.perf import DEFAULT
from chipforge.sim import simulate

OPS = [ops.matmul(256, 512, 384), ops.matmul(64, 128, 256, batch=4), ops.rmsnorm(256, 512),
       ops.softmax(128, 256), ops.elementwise(100_000, "silu"),
       ops.elementwise(50_000, "add", inputs=2), ops.layernorm(64, 768), ops.reduce(64, 300),
       ops.conv2d(2, 8, 16, 12, 12, kernel=3, padding=1), ops.embedding_bag(500, 64, 32, 1)]


def _zeros(graph):
    return {n: np.zeros(graph.tensors[n].shape,
                        np.int32 if graph.tensors[n].dtype == "int32" else np.float32)
            for n in graph.inputs}


# Known disagreements beyond 5%, each with what was measured, so that a fix shows (the
# test then fails until the entry is removed). forge-t1's 3 TB/s of GDDR7 (issue 15's
# fleet-level design) shortens each DMA step until the one DMA queue's ordering (a tile's
# store ahead of the next loads) outweighs what the engine's matmul-kernel model
# (perf._kernel_model.matmul_kernel_time) charges for it: the engine 4,128 cycles against
# the simulator's 4,378 (-5.7%); at the earlier 2 TB/s the two agreed within 2.1%.
KNOWN_GAPS = {("forge-t1", "matmul dtype=bf16 m=256 n=512 k=384 batch=1"): (-0.06, -0.05)}


@pytest.mark.parametrize("chip", ["forge-i1", "forge-t1"])
def test_engine_estimates_agree_with_the_simulated_kernels(chip):
    graph = kernel_graph_from_ops(OPS)
    spec = load_chip(chip)
    result = simulate(compile_graph(graph, spec), spec, _zeros(graph), functional=False,
                      trace=True)
    measured = result.kernel_cycles()
    hz = spec.clock_hz * DEFAULT.clock_fraction
    for node, op in zip(graph.nodes, OPS):
        # the compiled kernels compute in bf16 (the embedding table stays as given)
        op = dataclasses.replace(op, dtype="bf16")
        modelled = estimate(op, spec).seconds * hz
        error = modelled / measured[node.output] - 1
        low, high = KNOWN_GAPS.get((chip, op.describe()), (-0.05, 0.05))
        assert low <= error <= high, (op.describe(), modelled, measured[node.output])


def test_llm_decode_graph_compiles_and_runs():
    from chipforge.workloads import LLMConfig, llm_decode

    cfg = LLMConfig.from_hf({"model_type": "llama", "hidden_size": 128,
                             "intermediate_size": 256, "num_hidden_layers": 2,
                             "num_attention_heads": 4, "num_key_value_heads": 2,
                             "vocab_size": 512, "max_position_embeddings": 256})
    graph = llm_decode(cfg, batch=4, context_len=64)
    supported = [op for op, _ in graph.nodes if op.kind.value not in ("attention",)]
    kg = kernel_graph_from_ops(supported)
    result = simulate(compile_graph(kg, "forge-i1"), "forge-i1", _zeros(kg), functional=False)
    assert result.cycles > 0 and len(kg.nodes) >= 5


def test_attention_from_the_op_ir_is_a_clear_error():
    with pytest.raises(CompileError, match=r"no kernel for 'attention' from the op IR"):
        kernel_graph_from_ops([ops.attention(1, 16, 16, 4, 4, 32)])


def test_a_zero_size_tensor_is_one_clear_error() -> None:
    from chipforge.compiler import CompileError, KernelGraph, compile_graph

    g = KernelGraph(name="empty")
    g.add_tensor("x", (0, 8), "fp32")
    g.inputs = ["x"]
    g.add_node("relu", ("x",), "y", (0, 8), "fp32")
    g.outputs = ["y"]
    with pytest.raises(CompileError, match=r"tensor 'x' has shape \(0, 8\): zero-size"):
        compile_graph(g, "forge-i1")
