"""Measurement harnesses: what a timed call adds beyond the kernels it runs.

A published timing is the kernels' time plus what the harness that took it adds: the
timing method's fixed cost per call (events around a call, a CUDA-graph replay divided by
its length). That cost is a property of the harness version, never of the chip, so it
lives here and is added only when a prediction is compared with a measurement; an
``estimate`` of a workload never includes it.

Each harness's ``call_overhead_s`` is fitted with the shared efficiency parameters on the
A100 and H100 tables together (``scripts/calibrate.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from chipforge.errors import ChipforgeError


@dataclass(frozen=True)
class Harness:
    name: str
    # fixed time one timed call adds beyond its kernels (fitted), s
    call_overhead_s: float
    source: str


# aiconfigurator-core 0.12.0's collections (data/validation/README.md)
HARNESSES: dict[str, Harness] = {h.name: h for h in (
    Harness("none", 0.0, "a prediction of the kernels alone"),
    Harness("trtllm-1.0.0", 1.197e-06, "aiconfigurator collector, TensorRT-LLM 1.0.0 (the "
            "A100 set)"),
    Harness("trtllm-1.3", 1.182e-06, "aiconfigurator collector, TensorRT-LLM 1.3.0rc20/rc23 "
            "(the H100 set)"),
    # nccl-tests times eager calls: each carries the host's launch of the NCCL kernel; the
    # two collections ran different NCCL releases
    Harness("nccl-tests-2.27.3", 8.158e-06, "nccl-tests on NCCL 2.27.3 (the A100 set)"),
    Harness("nccl-tests-2.29.2", 2.226e-06, "nccl-tests on NCCL 2.29.2 (the H100 set)"),
)}


def harness(name: str) -> Harness:
    try:
        return HARNESSES[name]
    except KeyError:
        raise ChipforgeError(f"unknown measurement harness {name!r}; expected one of "
                             f"{', '.join(HARNESSES)}") from None
