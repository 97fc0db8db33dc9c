"""Regenerate docs/validation.md: the engine's error on every measured table.

    .venv/bin/python scripts/gen_validation.py        (or: make validation)

Reads the measured data vendored in data/validation/ (or CHIPFORGE_VALIDATION_DIR).
Nothing is fitted here: the shared efficiency parameters come from
src/chipforge/machine/_efficiency.py, fitted by scripts/calibrate.py on the even GEMM and
NCCL rows.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import fields
from pathlib import Path

from chipforge.arch import load_chip
from chipforge.ops import matmul
from chipforge.perf import DEFAULT, estimate
from chipforge.perf import validation as v

OUT = Path(__file__).resolve().parents[1] / "docs" / "validation.md"
ABOVE_S = 100e-6  # the "large" subset: measured time above the fixed per-call floors

EXPLANATIONS = Path(__file__).with_name("validation_notes.md")


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _breakdown(samples: list[v.Sample], chip, key, label: str) -> str:
    """Median signed and absolute error per value of ``key(op)``."""
    groups: dict = {}
    for sample, err in zip(samples, v.errors(samples, chip)):
        groups.setdefault(key(sample.op), []).append(err)
    rows = [[str(k), str(len(e)), _pct(statistics.median(e)),
             _pct(statistics.median(abs(x) for x in e))] for k, e in sorted(groups.items())]
    return _table(rows, [label, "rows", "median signed", "median APE"])


def agreement_section() -> str:
    """Simulator vs engine, kernel by kernel, for the zoo (needs torch for the zoo)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return "## Simulator vs engine\n\n(torch not installed: the zoo could not be captured)\n"
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "compiler"))
    import zoo

    from chipforge.compiler import agreement, capture, feed, quantize_graph

    per_op: dict[tuple[str, str], list[float]] = {}
    rows = []
    for name in ("mlp", "small_cnn", "gpt_decoder", "gpt_decode_step", "dlrm"):
        model, inputs = zoo.FACTORIES[name]()
        graph = capture(model, inputs, name=name)
        graphs = [("bf16", graph)] + ([] if name == "gpt_decode_step" else [
            (q, quantize_graph(graph, [feed(graph, inputs)], q)) for q in ("int8", "fp8_e4m3")])
        for precision, g in graphs:
            for chip in ("forge-i1", "forge-t1"):
                result = agreement(g, chip, feed(g, inputs))
                for r in result:
                    per_op.setdefault((r.op, chip), []).append(r.error)
                worst = max(result, key=lambda r: abs(r.error))
                rows.append([name, precision, chip, str(len(result)),
                             f"{100 * statistics.median(abs(r.error) for r in result):.2f}%",
                             f"{100 * worst.error:+.2f}% ({worst.op})"])
    op_rows = [[op, chip, str(len(e)), f"{100 * statistics.median(abs(x) for x in e):.2f}%",
                f"{100 * max(abs(x) for x in e):.2f}%"] for (op, chip), e in sorted(per_op.items())]
    return f"""## Simulator vs engine, kernel by kernel

Every kernel of every zoo model compiled for forge-i1 and forge-t1 (bf16, and int8 / fp8
after post-training quantization): the cycles the timed simulator measures (first
instruction to barrier release, over all arrays) against the engine's kernel model for
the same mapping (``chipforge.perf.*_kernel_time`` with the schedules of
``chipforge.machine``: partition, dataflow and SRAM tile from the
mapping search; DMA occupancy and latency, fold cycles and vector passes). Target: within
5% for every kernel (``tests/compiler/test_agreement.py``).

{_table(rows, ["model", "precision", "chip", "kernels", "median |error|", "worst"])}

By op:

{_table(op_rows, ["op", "chip", "kernels", "median |error|", "max |error|"])}
"""


def main() -> int:
    try:
        folder = v.validation_dir()
    except v.ValidationDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chip = load_chip("a100-sxm")
    a100 = folder / "a100"
    score_rows, large_rows = [], []
    for name, (loader, what) in v.TABLES.items():
        samples = loader(a100)
        s = v.score(name, samples, chip)
        score_rows.append([f"`{name}`", what, *s.as_row()[1:]])
        large = [x for x in samples if x.measured_s >= ABOVE_S]
        if large and len(large) < len(samples):
            ls = v.score(name, large, chip)
            large_rows.append([f"`{name}`", *ls.as_row()[1:]])
    held = v.gemm_bf16(a100)[1::2]
    hs = v.score("gemm_bf16 (odd rows, held out)", held, chip)
    score_rows.insert(1, [f"`{hs.table}`", "not used by the fit", *hs.as_row()[1:]])

    layer_rows = []
    for name in ("gpt3_layer_prefill", "gpt3_layer_decode"):
        for sample in v.TABLES[name][0](a100):
            pred = estimate(sample.op, chip).seconds
            layer_rows.append([name.removeprefix("gpt3_layer_"), sample.label,
                               f"{sample.measured_s * 1e6:.1f}", f"{pred * 1e6:.1f}",
                               f"{100 * (pred - sample.measured_s) / sample.measured_s:+.1f}%"])

    ctx = v.context_attention(a100)
    gen = v.generation_attention(a100)
    ctx_by_seq = _breakdown(ctx, chip, lambda g: g.nodes[-1][0].q_len, "seq_len")
    gen_by_group = _breakdown(gen, chip, lambda op: op.heads // op.kv_heads, "GQA group")
    gemm_by_m = _breakdown(v.gemm_bf16(a100), chip, lambda op: op.m, "m")
    h200 = estimate(matmul(8192, 8192, 8192), "h200-sxm").achieved_flops / 1e12
    params = "\n".join(f"| `{f.name}` | {getattr(DEFAULT, f.name):.4g} |"
                       for f in fields(DEFAULT))
    gemm_abs = [abs(e) for e in v.errors(held, chip)]
    text = f"""# Validation of the performance engine

Generated by `scripts/gen_validation.py` (`make validation`); do not edit by hand.

The engine predicts each measured kernel from the A100 datasheet (catalog `a100-sxm`) and
six shared efficiency parameters. The parameters were fitted by `scripts/calibrate.py` on
the even rows of `gemm_bf16` (clock, DRAM efficiency, launch overhead, pipeline latency)
and of `nccl` (link efficiency and hop latency); every other row is a prediction.

| parameter | value |
|---|---|
{params}

APE = absolute percentage error |predicted - measured| / measured; "signed" is the median
of (predicted - measured) / measured (negative: the engine is optimistic).

## Every table

{_table(score_rows, ["table", "what", "rows", "median APE", "p90 APE", "median signed"])}

Held-out GEMM rows: {len(gemm_abs)}, median APE {_pct(statistics.median(gemm_abs))}.

## Rows slower than {ABOVE_S * 1e6:.0f} us

Small calls are dominated by fixed per-call costs of the harness that measured them
(see the notes below); above {ABOVE_S * 1e6:.0f} us the hardware model is what is tested.

{_table(large_rows, ["table", "rows", "median APE", "p90 APE", "median signed"])}

## Where the error is

GEMM by m (rows of A):

{gemm_by_m}

Prefill attention by sequence length:

{ctx_by_seq}

Decode attention by GQA group size (query heads per KV head):

{gen_by_group}

## GPT-3 175B layer, per op (TP4 on A100, LLMCompass)

{_table(layer_rows, ["phase", "op", "measured us", "predicted us", "error"])}

## Held-out GPU: H200

An 8192^3 bf16 GEMM measured at about 788 TFLOP/s on an H200 (shared/notes); the engine,
with nothing fitted on Hopper, predicts {h200:.0f} TFLOP/s ({100 * (h200 - 788) / 788:+.1f}%).

{EXPLANATIONS.read_text() if EXPLANATIONS.exists() else ""}

{agreement_section()}"""
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
