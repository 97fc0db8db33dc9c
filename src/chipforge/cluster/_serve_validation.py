"""The serving model against TensorRT-LLM's published tables
(data/validation/cluster/serve_a100_h100_v0.csv.xz; docs/validation.md).

Each row is modelled as its harness ran it, nothing fitted per row:

- "max (infinite request rate)" (v0.17 ``trtllm-bench throughput``): every request at
  t = 0 through the simulator's continuous batching, the published request count
  (perf-overview.md: 30,000 at 128/128, 3,000 at 1000/1000), the batch and token caps that
  ``trtllm-bench build`` derives from the dataset (:func:`trtllm_bench_caps`), KV cache in
  95% of the free memory; the table's tokens/s is the whole group's output tokens/s.
- "static batch N" (v0.6.1 ``gptSessionBenchmark``): N requests at once, the whole batch's
  prompts in one context step, then N decodes per step to the end. The H100 table is
  "out tok/s/GPU". assumption: the A100 table (header "out tok/s") is per GPU too: its
  rows carry the same v0.6.1 batch sizes (384, 1280) as the H100 rows regenerated for that
  update, where the older v0.5 tables used batch 64.
- "batch 1" first-token latency (v0.5): one request's prefill (TTFT of a 1-token output).

FP8 rows run fp8 weights and KV cache (trtllm-bench: "If you specify FP8 quantization, the
KV cache will automatically be set to FP8"), FP16 rows fp16 weights and cache.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from functools import cache

from chipforge import ops
from chipforge.arch import load_chip
from chipforge.cluster._serve_cost import replica_cost
from chipforge.cluster._serve_sim import Deployment, Scheduler, simulate
from chipforge.cluster._serve_traffic import LengthDist, Traffic
from chipforge.errors import ClusterError
from chipforge.perf import validation
from chipforge.workloads import LLMConfig, load_llm_config

__all__ = ["ServeValidationRow", "serving_validation", "serving_validation_markdown",
           "trtllm_bench_caps"]

TABLE = "serve_a100_h100_v0.csv"
GPU_CHIPS = {"A100-SXM4-80GB": "a100-sxm", "A100 80GB": "a100-sxm",
             "H100 SXM 80GB": "h100-sxm"}
# source: perf-overview.md @258c7540, "$num_requests" per input/output length
PUBLISHED_REQUESTS = {(128, 128): 30000, (128, 2048): 3000, (128, 4096): 1500,
                      (2048, 128): 3000, (2048, 2048): 1500, (5000, 500): 1500,
                      (1000, 1000): 3000, (500, 2000): 3000, (20000, 2000): 1000}


def _llama2(name: str, hidden: int, ffn: int, layers: int, heads: int, kv_heads: int) -> LLMConfig:
    # source: meta-llama/Llama-2-7b-hf and Llama-2-70b-hf config.json (32,000-token vocab,
    # 4,096 positions, RMSNorm eps 1e-5, float16)
    return LLMConfig.from_hf({"model_type": "llama", "hidden_size": hidden,
                              "intermediate_size": ffn, "num_hidden_layers": layers,
                              "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                              "vocab_size": 32000, "max_position_embeddings": 4096,
                              "rms_norm_eps": 1e-5, "torch_dtype": "float16"}, name=name)


@cache
def _model(name: str) -> LLMConfig:
    models = {"Llama 3.1 8B": "llama-3.1-8b", "Llama 3.1 70B": "llama-3.1-70b"}
    if name in models:
        return load_llm_config(models[name])
    if name == "LLaMA(2) 7B":
        return _llama2("llama-2-7b", 4096, 11008, 32, 32, 32)
    if name == "LLaMA(2) 70B":
        return _llama2("llama-2-70b", 8192, 28672, 80, 64, 8)
    raise ClusterError(f"{TABLE}: model {name!r} has no config; expected one of "
                       f"{', '.join([*models, 'LLaMA(2) 7B', 'LLaMA(2) 70B'])}")


@dataclass(frozen=True)
class ServeValidationRow:
    """One published measurement and the model's prediction of it. ``metric`` is
    "tokens/s/GPU", "tokens/s" (the whole group) or "TTFT ms"."""

    model: str
    gpu: str
    tp: int
    framework: str
    input_len: int
    output_len: int
    setting: str
    metric: str
    measured: float
    predicted: float
    basis: str

    @property
    def error(self) -> float:
        """Signed relative error, predicted / measured - 1."""
        return self.predicted / self.measured - 1.0


def trtllm_bench_caps(cfg: LLMConfig, capacity_bytes: float, tp: int, pp: int,
                      input_len: int, output_len: int, weight_bytes: float,
                      kv_bytes: float, kv_fraction: float = 0.95) -> tuple[int, int]:
    """(max_batch_size, max_num_tokens) as ``trtllm-bench build --dataset`` derives them
    from the dataset's lengths (tensorrt_llm/bench/build/tuning.py, calc_engine_setting and
    finetune_setting, read at a later commit than v0.17; assumption: unchanged since)."""
    gib = 1024 ** 3
    per_token = 2 * cfg.num_layers * max(tp, cfg.num_kv_heads) * cfg.head_dim * kv_bytes / gib
    engine = cfg.param_count() * weight_bytes / gib
    available = capacity_bytes / gib * tp * pp - engine
    requests = available * kv_fraction / (per_token * (input_len + output_len))
    raw_bs = min(requests, 4096) / pp
    raw_tokens = min(raw_bs * (1 + input_len / output_len), 32768)
    if raw_bs < 256:
        max_bs = max(64, 32 * math.ceil(raw_bs / 32))
    elif raw_bs < 1024:
        max_bs = 128 * math.ceil(raw_bs / 128)
    else:
        max_bs = 256 * math.ceil(raw_bs / 256)
    if raw_tokens < 4096:
        max_tokens = max(2048, 256 * math.ceil(raw_tokens / 256))
    elif raw_tokens < 8192:
        max_tokens = 512 * math.ceil(raw_tokens / 512)
    else:
        max_tokens = 1024 * math.ceil(raw_tokens / 1024)
    return max_bs, max_tokens


def _rows_of_table() -> list[dict[str, str]]:
    return validation.read_table(validation.validation_dir() / "cluster" / TABLE)


def _traffic(n: int, isl: int, osl: int) -> Traffic:
    return Traffic(None, n, LengthDist.fixed(isl), LengthDist.fixed(osl))


def max_load_tokens_s(cfg: LLMConfig, chip: str, tp: int, dtype: str, isl: int, osl: int,
                      requests: int) -> tuple[float, str]:
    """The group's output tokens/s, all ``requests`` queued at once (trtllm-bench)."""
    spec = load_chip(chip)
    size = ops.dtype_bytes(dtype)
    max_bs, max_tokens = trtllm_bench_caps(cfg, spec.memory.capacity_bytes, tp, 1, isl, osl,
                                           size, size)
    cost = replica_cost(cfg, chip, tp=tp, dtype=dtype, harness="trtllm-0.17",
                        max_batch_tokens=max_tokens)
    # a decode takes one of the iteration's max_num_tokens, so the token cap bounds the
    # running sequences too
    sched = Scheduler(max_batch_tokens=max_tokens, max_seqs=min(max_bs, max_tokens),
                      chunked_prefill=False)
    result = simulate(Deployment(cost, scheduler=sched), _traffic(requests, isl, osl))
    basis = (f"{requests} requests at once, max_batch_size {max_bs}, max_num_tokens "
             f"{max_tokens}, KV cache {cost.kv_capacity_tokens} tokens")
    return result.output_tokens_per_s, basis


def static_batch_tokens_s(cfg: LLMConfig, chip: str, tp: int, dtype: str, batch: int,
                          isl: int, osl: int) -> tuple[float, str]:
    """The group's output tokens/s of one static batch (gptSessionBenchmark)."""
    cost = replica_cost(cfg, chip, tp=tp, dtype=dtype, harness="trtllm-0.6",
                        max_batch_tokens=batch * isl)
    sched = Scheduler(max_batch_tokens=batch * isl, max_seqs=batch, chunked_prefill=False)
    result = simulate(Deployment(cost, scheduler=sched), _traffic(batch, isl, osl))
    return result.output_tokens_per_s, (f"{batch} prompts in one context step, then "
                                        f"{batch} decodes per step")


def first_token_ms(cfg: LLMConfig, chip: str, tp: int, dtype: str, isl: int) -> tuple[float, str]:
    cost = replica_cost(cfg, chip, tp=tp, dtype=dtype, harness="trtllm-0.6",
                        max_batch_tokens=isl)
    sched = Scheduler(max_batch_tokens=isl, max_seqs=1, chunked_prefill=False)
    result = simulate(Deployment(cost, scheduler=sched), _traffic(1, isl, 1))
    return float(result.ttft_s[0]) * 1e3, f"one {isl}-token prefill"


def _predict(row: dict[str, str]) -> tuple[str, float, float, str]:
    """(metric, measured, predicted, basis) of one table row."""
    cfg = _model(row["model"])
    chip = GPU_CHIPS[row["gpu_type"]]
    tp = int(row["tp"])
    dtype = "fp8_e4m3" if row["framework"].endswith("FP8") else "fp16"
    isl, osl = int(row["input_len"]), int(row["output_len"])
    setting = row["batch_or_concurrency"]
    if setting.startswith("max"):
        predicted, basis = max_load_tokens_s(cfg, chip, tp, dtype, isl, osl,
                                             PUBLISHED_REQUESTS[(isl, osl)])
        return "tokens/s", float(row["throughput_tokens_s"]), predicted, basis
    batch = int(re.sub(r"\D", "", setting))
    if row["ttft_ms"]:
        predicted, basis = first_token_ms(cfg, chip, tp, dtype, isl)
        return "TTFT ms", float(row["ttft_ms"]), predicted, basis
    predicted, basis = static_batch_tokens_s(cfg, chip, tp, dtype, batch, isl, osl)
    return "tokens/s/GPU", float(row["throughput_tokens_s"]), predicted / tp, basis


@cache
def serving_validation() -> tuple[ServeValidationRow, ...]:
    """Every row of the published table with the model's prediction."""
    out = []
    for row in _rows_of_table():
        metric, measured, predicted, basis = _predict(row)
        out.append(ServeValidationRow(
            row["model"], row["gpu_type"], int(row["tp"]), row["framework"],
            int(row["input_len"]), int(row["output_len"]), row["batch_or_concurrency"],
            metric, measured, predicted, basis))
    return tuple(out)


def median_abs_error(rows: tuple[ServeValidationRow, ...]) -> float:
    return statistics.median(abs(r.error) for r in rows)


def serving_validation_markdown() -> str:
    rows = serving_validation()
    lines = ["| model | GPU | TP | framework | in/out | setting | metric | measured | "
             "predicted | error |", "|" + " --- |" * 10]
    for r in rows:
        lines.append(f"| {r.model} | {r.gpu} | {r.tp} | {r.framework} | {r.input_len}/"
                     f"{r.output_len} | {r.setting} | {r.metric} | {r.measured:,.0f} | "
                     f"{r.predicted:,.0f} | {r.error:+.1%} |")
    lines.append("")
    lines.append(f"Median |error| over {len(rows)} rows: {median_abs_error(rows):.1%} "
                 "(target 15%).")
    return "\n".join(lines)
