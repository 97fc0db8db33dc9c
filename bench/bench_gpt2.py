"""GPT-2 small on the simulator: capture, compile and simulation time, and the chip's cycles.

    .venv/bin/python bench/bench_gpt2.py [--layers 12] [--tokens 128] [--chip forge-i1]
                                         [--head | --no-head] [--profile capture|compile|sim]

Builds transformers' ``GPT2LMHeadModel`` (``--no-head``: ``GPT2Model``) from the default
``GPT2Config`` (124 M parameters at 12 layers; ``--layers N`` for a quick run) with random
weights, nothing downloaded, ``use_cache=False``; captures a ``--tokens``-token prefill with
``chipforge.compiler.capture`` (torch.export), compiles it (bf16 activations) and runs it
once on the simulator. Prints parameters, graph nodes, capture, compile and simulation
seconds (wall, and this process's CPU seconds: the figure to compare on a shared machine),
compile ms per graph node, instructions, simulated cycles and time at the chip's clock, and
the output's largest error relative to PyTorch fp32's largest output.
Target (issue 14): the 12-layer 128-token prefill simulated in under 5 minutes on 2 cores.
``--profile PHASE`` prints that phase's 20 costliest functions (cProfile, own time).
A bench, not a test: it asserts nothing. BLAS runs on one thread (override with
OPENBLAS_NUM_THREADS), as in bench_sim.py.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from collections.abc import Callable
from contextlib import nullcontext

# one BLAS thread: the simulator's products are per core, and a second busy process cannot
# make OpenBLAS's spinning threads thrash
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from chipforge.arch import load_chip  # noqa: E402
from chipforge.compiler import capture, compile_graph  # noqa: E402
from chipforge.sim import simulate  # noqa: E402

TARGET_S = 300.0  # simulation wall time of the full model's 128-token prefill


def build(layers: int, head: bool) -> torch.nn.Module:
    """GPT-2 small (the default GPT2Config) with ``layers`` blocks and random weights."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=layers, use_cache=False)
    return (GPT2LMHeadModel if head else GPT2Model)(cfg).eval()


def timed(phase: str, profile: str | None,
          fn: Callable[[], object]) -> tuple[object, float, float]:
    """fn()'s result, wall seconds and this process's CPU seconds (the figure to compare on
    a shared machine); under cProfile (report printed) if ``phase`` is the one profiled."""
    prof = cProfile.Profile() if profile == phase else None
    with prof or nullcontext():
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if prof is not None:
        print(f"--- cProfile of {phase} (times include the profiler's overhead) ---")
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    return out, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--chip", default="forge-i1")
    ap.add_argument("--head", action=argparse.BooleanOptionalAction, default=True,
                    help="GPT2LMHeadModel (logits) or, with --no-head, GPT2Model")
    ap.add_argument("--profile", choices=("capture", "compile", "sim"))
    args = ap.parse_args()

    model = build(args.layers, args.head)
    params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, model.config.vocab_size, (1, args.tokens),
                        generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(ids)
        want = (out.logits if args.head else out.last_hidden_state).numpy()
        graph, cap_s, cap_cpu = timed("capture", args.profile,
                             lambda: capture(model, (ids,), name="gpt2"))
    program, comp_s, comp_cpu = timed("compile", args.profile,
                            lambda: compile_graph(graph, args.chip, dtype="bf16"))
    feed = {graph.inputs[0]: ids.numpy().astype(np.int32)}
    result, sim_s, sim_cpu = timed("sim", args.profile, lambda: simulate(program, args.chip, feed))
    got = np.asarray(result.outputs[graph.outputs[0]], np.float32).reshape(want.shape)
    err = float(np.abs(got - want).max() / np.abs(want).max())
    nodes = len(graph.nodes)
    chip = load_chip(args.chip)
    print(f"GPT-2 {'LM head' if args.head else 'model'}: {args.layers} layers, "
          f"{args.tokens}-token prefill on {chip.name} (bf16 activations)")
    print(f"  parameters          {params:,}")
    print(f"  graph nodes         {nodes}")
    print(f"  capture             {cap_s:.2f} s ({cap_cpu:.2f} s CPU)")
    print(f"  compile             {comp_s:.2f} s ({comp_cpu:.2f} s CPU; "
          f"{comp_s / nodes * 1e3:.2f} ms per node, {comp_cpu / nodes * 1e3:.2f} ms CPU)")
    print(f"  instructions        {sum(len(c) for c in program.cores):,} "
          f"on {len(program.cores)} cores")
    print(f"  simulated cycles    {result.cycles:,} ({result.seconds * 1e3:.3f} ms at the "
          f"{result.clock_hz / 1e9:.3f} GHz sustained clock)")
    print(f"  simulation          {sim_s:.2f} s ({sim_cpu:.2f} s CPU; target for 12 layers, "
          f"128 tokens: < {TARGET_S:.0f} s)")
    print(f"  max |chip - torch fp32| / max |torch fp32| = {err:.2e}")


if __name__ == "__main__":
    main()
