"""The report's compiled-model section: example models compiled and simulated on our
chips, with their trace summaries (and the Perfetto traces themselves)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chipforge.compiler import compile_graph, example_graph
from chipforge.sim import simulate

OUR_CHIPS = ("forge-t1", "forge-i1")


def compiled_section(out: Path, examples: tuple[str, ...] = ("mlp", "attention")) -> list[dict]:
    rows = []
    for name in examples:
        graph = example_graph(name)
        rng = np.random.default_rng(0)
        inputs = {n: rng.standard_normal(graph.tensors[n].shape).astype(np.float32)
                  for n in graph.inputs}
        for chip in OUR_CHIPS:
            program = compile_graph(graph, chip)
            result = simulate(program, chip, inputs, trace=True)
            trace = out / f"trace-{name}-{chip}.json"
            result.write_trace(trace)
            util = {}
            for unit in ("DMA", "MXU", "VEC"):
                busy = [v for (_, u), v in result.busy.items() if u == unit]
                util[unit] = sum(busy) / len(busy) / max(result.cycles, 1) if busy else 0.0
            rows.append({"model": name, "chip": chip, "kernels": len(graph.nodes),
                         "instructions": result.instructions, "cycles": result.cycles,
                         "us": result.seconds * 1e6, "util": util,
                         "top": result.top_ops(3), "trace": trace.name})
    return rows
