"""The training-step model against published A100 runs (data/validation/cluster/train_a100.csv).

Each row runs ``evaluate_plan`` with the plan as published and compares throughput per GPU
(tokens/s/GPU). Nothing is fitted per row or per chip. What each row measures, read from
its notes, becomes a step time in seconds:

- Megatron-LM 2021 (Narayanan et al. 2021 Table 1; README of April 2021): TFLOP/s per GPU
  counted with Narayanan eq. 3, ``96 B s l h^2 (1 + s/(6h) + V/(16 l h))`` (full activation
  recompute counted), end to end; step = those FLOPs / (GPUs x TFLOP/s).
- Korthikanti et al. 2022 Table 5: the iteration times themselves, for selective
  recompute + sequence parallelism and for full recompute without it (two rows each).
- Korthikanti §6.3: 39.15 s at 8-way data parallelism without gradient-reduce overlap.
- BLOOM-176B: the logged iteration time (104.70 s).
- MT-NLG 530B (Smith et al. 2022, via llm-analysis): SECONDARY, shown apart, not in the
  median; the 40/80 GB question is reported with the memory.
- Excluded, with the reason shown: the Llama 2 rows (GPU counts unknown; derived values)
  and the tables.tex row (sequence length not stated).
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from dataclasses import dataclass

from chipforge.cluster._system import Network, System, system
from chipforge.cluster._train_job import Parallelism, TrainJob
from chipforge.cluster._train_model import evaluate_plan
from chipforge.cluster._train_ops import TRAINING_CLOCK_FRACTION
from chipforge.errors import ClusterError
from chipforge.machine import DEFAULT, Efficiency
from chipforge.perf.validation import read_table, validation_dir
from chipforge.workloads import USABLE_MEMORY_FRACTION, LLMConfig, load_llm_config

TABLE = "cluster/train_a100.csv"
# source: NVIDIA A100 datasheet: the 40 GB SXM4 model (MT-NLG's secondary rows may be on it)
A100_40GB_BYTES = 40e9
GIB = 2**30

# Narayanan et al. 2021 Table 1 and Korthikanti et al. 2022 Table 3 models by parameter
# count in billions (the shapes are in workloads/configs/*.json with their sources)
MODELS = {1.7: "megatron-gpt-1.7b", 3.6: "megatron-gpt-3.6b", 7.5: "megatron-gpt-7.5b",
          18.4: "megatron-gpt-18b", 39.1: "megatron-gpt-39b", 76.1: "megatron-gpt-76b",
          145.6: "megatron-gpt-145b", 310.1: "megatron-gpt-310b",
          529.6: "megatron-gpt-530b", 530.0: "megatron-gpt-530b",
          1008.0: "megatron-gpt-1t", 1000.0: "megatron-gpt-1t", 22.0: "megatron-gpt-22b",
          175.0: "gpt3-175b", 176.0: "bloom-176b"}
# assumption: Narayanan Table 1 does not give the micro-batch size or schedule; Megatron-LM's
# examples/pretrain_gpt3_175B.sh of that time uses --micro-batch-size 1 and the default
# (non-interleaved) 1F1B schedule, so every 2021 row is run that way
MEGATRON_2021_MICRO_BATCH = 1
# source: bigscience tr11-176B-ml README (the training script): MICRO_BATCH_SIZE=2,
# --checkpoint-activations (full recompute), ZeRO stage 1, bf16
BLOOM_MICRO_BATCH = 2
# source: IDRIS Jean Zay documentation (the BLOOM cluster): A100 80 GB nodes of 8 GPUs with
# 4 Omni-Path 100 Gb/s links per node, i.e. half a 12.5 GB/s NIC per GPU
JEAN_ZAY_NIC = {"nics_per_chip": 0.5, "nic_bytes_per_s": 12.5e9}


@dataclass(frozen=True)
class TrainRow:
    """One published run, modelled: measured and modelled tokens/s per GPU."""

    source: str
    model: str
    gpus: int
    plan: str
    measured_tokens_per_s_per_gpu: float
    modelled_tokens_per_s_per_gpu: float
    measured_step_s: float
    modelled_step_s: float
    mfu: float
    memory_gib: float
    fits: bool
    group: str  # "primary" (in the median), "secondary", or "excluded"
    note: str

    @property
    def error(self) -> float:
        """Signed relative error of modelled throughput per GPU (+: model too fast)."""
        return self.modelled_tokens_per_s_per_gpu / self.measured_tokens_per_s_per_gpu - 1


def narayanan_flops(cfg: LLMConfig, batch: int, seq: int) -> float:
    """Narayanan et al. 2021 eq. 3: FLOPs per iteration, full recompute counted."""
    h, layers, vocab = cfg.hidden_size, cfg.num_layers, cfg.vocab_size
    return 96 * batch * seq * layers * h * h * (1 + seq / (6 * h) + vocab / (16 * layers * h))


def _number(pattern: str, text: str, what: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise ClusterError(f"{TABLE}: cannot read {what} from {text!r}; expected a match "
                           f"of {pattern!r}")
    return float(match.group(1).replace(",", ""))


def _megatron_plan(row: dict[str, str]) -> Parallelism:
    return Parallelism(tp=int(float(row["tp"])), pp=int(float(row["pp"])),
                       dp=int(row["dp"]), micro_batch=MEGATRON_2021_MICRO_BATCH, zero=0,
                       recompute="full", overlap_grad_reduce=False)


def _korthikanti_plan(row: dict[str, str], selective: bool) -> Parallelism:
    mbs = int(_number(r"MBS (\d+)", row["global_batch_tokens_or_seqs"], "the micro-batch"))
    interleave = int(_number(r"interleaved m=(\d+)", row["notes"], "v")) \
        if "interleaved m=" in row["notes"] else 1
    return Parallelism(tp=int(float(row["tp"])), pp=int(float(row["pp"])),
                       dp=int(row["dp"]), micro_batch=mbs,
                       schedule="interleaved" if interleave > 1 else "1f1b",
                       virtual_stages=interleave, zero=0,
                       recompute="selective" if selective else "full",
                       sequence_parallel=selective, overlap_grad_reduce=False)


def _model_row(src: str, model: str, cfg_name: str, batch: int, par: Parallelism,
               measured_step: float, dtype: str, group: str, note: str,
               sys_: System | None = None) -> TrainRow:
    cfg = load_llm_config(cfg_name)
    job = TrainJob(cfg, tokens=1e12, seq_len=2048, global_batch_seqs=batch, dtype=dtype)
    est = evaluate_plan(job, sys_ or system("a100-sxm", par.chips), par, _EFF[0])
    tokens = batch * 2048
    return TrainRow(src, model, par.chips, par.describe(), tokens / measured_step / par.chips,
                    tokens / est.step_time_s / par.chips, measured_step, est.step_time_s,
                    est.mfu, est.memory_bytes / GIB, est.fits, group, note)


def _rows_of(row: dict[str, str]) -> list[TrainRow]:
    src, notes, model = row["source"], row["notes"], row["model"]
    if src.startswith("NVIDIA/Megatron-LM git commit 50a4b5fa"):
        cfg = load_llm_config(MODELS[float(row["params_b"])])
        batch = int(_number(r"(\d+) seqs", row["global_batch_tokens_or_seqs"], "the batch"))
        tflops = _number(r"([\d.]+) TFLOP/s", row["mfu_pct_or_tflops_per_gpu"], "TFLOP/s")
        par = _megatron_plan(row)
        step = narayanan_flops(cfg, batch, 2048) / (par.chips * tflops * 1e12)
        return [_model_row("Narayanan 2021", model, MODELS[float(row["params_b"])], batch,
                           par, step, "fp16", "primary",
                           f"{tflops:g} TFLOP/s/GPU (eq. 3) -> step {step:.2f} s")]
    if src.startswith("Korthikanti") and "§6.3" in src:
        par = dataclasses.replace(_korthikanti_plan({**row, "global_batch_tokens_or_seqs":
                                                     "MBS 1"}, True), schedule="interleaved",
                                  virtual_stages=3)
        step = _number(r"to ([\d.]+) seconds", notes, "the iteration time")
        return [_model_row("Korthikanti 2022 §6.3", model, MODELS[float(row["params_b"])],
                           2240, par, step, "fp16", "primary",
                           f"iteration {step} s, DP 8, no grad-reduce overlap")]
    if src.startswith("Korthikanti"):
        batch = int(_number(r"^(\d+) seqs", row["global_batch_tokens_or_seqs"], "the batch"))
        name = MODELS[float(row["params_b"])]
        out = []
        for selective, pattern in ((True, r"iteration ([\d.]+) s"),
                                   (False, r"no SP: ([\d.]+) s")):
            step = _number(pattern, notes, "the iteration time")
            what = "selective recompute + SP" if selective else "full recompute"
            out.append(_model_row("Korthikanti 2022 Table 5", f"{model} ({what})", name,
                                  batch, _korthikanti_plan(row, selective), step, "fp16",
                                  "primary", f"iteration {step} s"))
        return out
    if src.startswith("bigscience"):
        return [_bloom_row(row)]
    if src.startswith("cli99/llm-analysis"):
        return [_mtnlg_row(row)]
    return [_excluded(row)]


def _bloom_row(row: dict[str, str]) -> TrainRow:
    step = _number(r"elapsed time per iteration \(s\): ([\d.]+)", row["notes"], "the time")
    par = Parallelism(tp=4, pp=12, dp=8, micro_batch=BLOOM_MICRO_BATCH, zero=1,
                      recompute="full", overlap_grad_reduce=False)
    base = system("a100-sxm", par.chips)
    net: Network = dataclasses.replace(base.network, **JEAN_ZAY_NIC)
    return _model_row("BLOOM (BigScience)", row["model"], "bloom-176b", 2048, par, step,
                      "bf16", "primary", f"iteration {step} s; Omni-Path 4x100 Gb/s a node",
                      dataclasses.replace(base, network=net))


def _mtnlg_row(row: dict[str, str]) -> TrainRow:
    step = _number(r"iteration ([\d.]+) s", row["notes"], "the iteration time")
    dp = int(row["dp"])
    par = Parallelism(tp=8, pp=35, dp=dp, micro_batch=1, zero=1, recompute="full",
                      overlap_grad_reduce=False)
    out = _model_row("MT-NLG (SECONDARY)", row["model"], "megatron-gpt-530b", 1920, par, step,
                     "fp16", "secondary", f"iteration {step} s; 1920 seqs")
    fits_40 = out.memory_gib * GIB <= A100_40GB_BYTES * USABLE_MEMORY_FRACTION
    return dataclasses.replace(out, note=out.note + f"; {out.memory_gib:.1f} GiB per GPU "
                               f"{'fits' if fits_40 else 'does not fit'} a 40 GB A100")


def _excluded(row: dict[str, str]) -> TrainRow:
    reason = ("GPU count unknown; the value is derived (6ND / GPU-hours), not measured"
              if row["gpus"] == "unknown" else "sequence length not stated")
    return TrainRow(row["source"][:40], row["model"], 0, "", float("nan"), float("nan"),
                    float("nan"), float("nan"), float("nan"), float("nan"), False,
                    "excluded", reason)


_EFF = [DEFAULT]


def training_validation(eff: Efficiency = DEFAULT) -> list[TrainRow]:
    """Every row of train_a100.csv, modelled (or excluded with its reason)."""
    rows = read_table(validation_dir() / TABLE)
    _EFF[0] = eff
    try:
        return [out for row in rows for out in _rows_of(row)]
    finally:
        _EFF[0] = DEFAULT


def fit_rows(rows: list[TrainRow]) -> tuple[list[TrainRow], list[TrainRow]]:
    """(even, odd) halves of the Megatron-LM 2021 and Korthikanti 2022 rows, in table order:
    the training clock is fitted on the even half, the odd half is its hold-out."""
    rows = [r for r in rows if r.group == "primary" and not r.source.startswith("BLOOM")]
    return rows[0::2], rows[1::2]


def fit_training_clock(steps: int = 14) -> float:
    """The training-loop clock fraction (``_train_ops.TRAINING_CLOCK_FRACTION``) that makes
    the median signed throughput error of the even half zero, by bisection on [0.6, 1]."""
    low, high = 0.6, 1.0
    for _ in range(steps):
        mid = (low + high) / 2
        # evaluate_plan applies TRAINING_CLOCK_FRACTION itself: undo it, apply ``mid``
        scale = mid / TRAINING_CLOCK_FRACTION
        eff = dataclasses.replace(DEFAULT, clock_fraction=DEFAULT.clock_fraction * scale)
        even, _ = fit_rows(training_validation(eff))
        if statistics.median(r.error for r in even) > 0:  # the model is too fast
            high = mid
        else:
            low = mid
    return (low + high) / 2


def median_abs_error(rows: list[TrainRow], group: str = "primary") -> float:
    return statistics.median(abs(r.error) for r in rows if r.group == group)


def training_validation_table(rows: list[TrainRow] | None = None) -> str:
    """A markdown table of the rows and the median |error| of the primary ones."""
    rows = training_validation() if rows is None else rows
    lines = ["| source | model | GPUs | plan | measured tok/s/GPU | modelled | error | "
             "MFU | GiB/GPU | note |", "|" + " --- |" * 10]
    for r in rows:
        if r.group == "excluded":
            lines.append(f"| {r.source} | {r.model} | - | - | - | - | excluded | - | - | "
                         f"{r.note} |")
            continue
        tag = "" if r.group == "primary" else f" ({r.group})"
        lines.append(f"| {r.source}{tag} | {r.model} | {r.gpus} | {r.plan} | "
                     f"{r.measured_tokens_per_s_per_gpu:.0f} | "
                     f"{r.modelled_tokens_per_s_per_gpu:.0f} | {r.error:+.1%} | "
                     f"{r.mfu:.1%} | {r.memory_gib:.1f} | {r.note} |")
    primary = [r for r in rows if r.group == "primary"]
    lines.append("")
    lines.append(f"Median |error| over the {len(primary)} primary rows: "
                 f"{median_abs_error(rows):.1%}.")
    return "\n".join(lines)


__all__ = ["TrainRow", "training_validation", "training_validation_table"]
