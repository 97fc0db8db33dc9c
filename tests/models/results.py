"""Print the model suite's results table (docs/compiler.md, "The model suite"): one row per
model, each mode on forge-i1 through ``torch.compile``, with the measured figure or the
first line of the error. bf16: max abs error / max abs output against PyTorch fp32, under
``torch.no_grad()``; "grad": the same without it (parameters require grad); int8 and fp8
PTQ: cosine against PyTorch fp32. The last column is the row's wall time in seconds
(compile and simulate, all modes).

    .venv/bin/python tests/models/results.py [MODES [MODELS]]   # e.g. bf16,grad,int8 gpt2,dlrm
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

import hf_models as hf  # noqa: E402
from suite import QUANTS, cosine, on_chip, quantized_nodes, relative_error  # noqa: E402

from chipforge.examples import DIN, DLRM, TwoTower  # noqa: E402

PLATFORM = {"dlrm": DLRM, "twotower": TwoTower, "din": DIN}


def _model(name: str):
    """(model, inputs of a seed, call) for a suite model."""
    if name in PLATFORM:
        torch.manual_seed(0)
        model = PLATFORM[name]().eval()
        return model, lambda seed: model.example_inputs(4, seed), lambda m, x: m(*x)
    return (hf.build(name), lambda seed: hf.example_inputs(name, seed=seed),
            lambda m, x: hf.logits(m, name, x))


def cell(name: str, mode: str) -> str:
    """One measurement: the figure, or why there is none."""
    model, inputs, call = _model(name)
    x = inputs(0)
    with torch.no_grad():
        want = call(model, x)
    options = {"no_grad": mode != "grad"} if mode in ("bf16", "grad") else {
        "quant": mode, "calibration": [inputs(s) for s in (1, 2, 3, 4)]}
    try:
        got, backend = on_chip(model, lambda m: call(m, x), **options)
    except Exception as e:  # noqa: BLE001 - the table shows what failed
        return "fails: " + str(e).split("raised:")[-1].strip().splitlines()[0][:120]
    if not backend.summary().all_on_chip or (mode in QUANTS and not quantized_nodes(backend)):
        return "not all on the chip"
    return f"{cosine(got, want):.4f}" if mode in QUANTS else f"{relative_error(got, want):.4f}"


HEADINGS = {"bf16": "bf16 error", "grad": "bf16 error, no `no_grad`", "int8": "int8 cosine",
            "fp8": "fp8 cosine"}


def main() -> None:
    modes = sys.argv[1].split(",") if len(sys.argv) > 1 else list(HEADINGS)
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else [*hf.BUILDERS, *PLATFORM]
    warnings.simplefilter("ignore")
    print("| model | " + " | ".join(HEADINGS.get(m, m) for m in modes) + " | seconds |")
    print("|---" * (len(modes) + 2) + "|")
    for name in names:
        start = time.perf_counter()
        cells = [cell(name, mode) for mode in modes]
        print(f"| {name} | " + " | ".join(cells) + f" | {time.perf_counter() - start:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
