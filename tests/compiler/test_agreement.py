"""Simulated cycles against the performance engine's kernel model, kernel by kernel, for
every op of the model zoo (issue 3, section 7: within 5%). docs/validation.md carries the
table (scripts/gen_validation.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import zoo  # noqa: E402

from chipforge.compiler import agreement, capture, feed, quantize_graph  # noqa: E402

TOLERANCE = 0.05
MODELS = ["mlp", "small_cnn", "gpt_decoder", "gpt_decode_step", "dlrm"]


def _check(graph, chip, inputs):
    rows = agreement(graph, chip, inputs)
    assert rows, "no kernels compared"
    worst = max(rows, key=lambda r: abs(r.error))
    assert abs(worst.error) <= TOLERANCE, (worst.label, worst.op, worst.simulated,
                                           worst.modelled)
    # every kernel that moves data is in the comparison (reshape is free and emits none)
    ops = {n.op for n in graph.nodes} - {"reshape"}
    assert ops <= {r.op for r in rows}


@pytest.mark.parametrize("chip", ["forge-i1", "forge-t1"])
@pytest.mark.parametrize("name", MODELS)
def test_bf16_kernels_agree_within_5_percent(name, chip):
    model, inputs = zoo.FACTORIES[name]()
    graph = capture(model, inputs, name=name)
    _check(graph, chip, feed(graph, inputs))


@pytest.mark.slow
@pytest.mark.parametrize("quant", ["int8", "fp8_e4m3"])
@pytest.mark.parametrize("chip", ["forge-i1", "forge-t1"])
@pytest.mark.parametrize("name", ["mlp", "small_cnn", "gpt_decoder", "dlrm"])
def test_quantized_kernels_agree_within_5_percent(name, chip, quant):
    model, inputs = zoo.FACTORIES[name]()
    graph = capture(model, inputs, name=name)
    qgraph = quantize_graph(graph, [feed(graph, inputs)], quant)
    _check(qgraph, chip, feed(qgraph, inputs))
