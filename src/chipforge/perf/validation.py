"""Measured-GPU validation tables: each row becomes an op, a measured time and a prediction.

The data ships with the repository, compressed, in ``data/validation/`` (its README gives
provenance, licences and attribution); ``CHIPFORGE_VALIDATION_DIR`` names another folder of
the same layout instead. Nothing here is fitted: the tables are read, predicted with the
shared efficiency parameters and scored.
"""

from __future__ import annotations

import csv
import gzip
import lzma
import os
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from chipforge.arch import ChipSpec, load_chip
from chipforge.errors import ChipforgeError
from chipforge.machine import DEFAULT, Efficiency
from chipforge.ops import (
    Collective,
    Graph,
    Op,
    all_gather,
    all_reduce,
    all_to_all,
    elementwise,
    layernorm,
    matmul,
    reduce_scatter,
    softmax,
)
from chipforge.perf._measured import Sample, gemm_sample, table_dtype
from chipforge.perf._measured_attention import context_call, generation_call
from chipforge.perf._measured_moe import moe_call

ENV_VAR = "CHIPFORGE_VALIDATION_DIR"
# A table ``name.csv`` may be stored plain or compressed; the vendored copy uses xz.
_OPENERS = {"": open, ".xz": lzma.open, ".gz": gzip.open}


class ValidationDataError(ChipforgeError):
    """The measured-data folder or one of its tables cannot be found."""


def vendored_dir() -> Path | None:
    """``data/validation`` of the checkout this module runs from (an editable install), or
    None where the package was installed without the repository."""
    here = Path(__file__).resolve()
    return next((p / "data" / "validation" for p in here.parents
                 if (p / "data" / "validation" / "a100").is_dir()), None)


def validation_dir() -> Path:
    """The measured-data folder: ``$CHIPFORGE_VALIDATION_DIR`` if set, else the vendored copy.
    A folder that is named but unusable is an error, never a silent fall-back to the other."""
    env = os.environ.get(ENV_VAR)
    if env:
        if not (Path(env) / "a100").is_dir():
            raise ValidationDataError(
                f"{ENV_VAR}={env}: no a100/ folder there; expected a folder laid out like "
                "data/validation (a100/, h100/, cluster/ of .csv, .csv.xz or .csv.gz tables)")
        return Path(env)
    folder = vendored_dir()
    if folder is None:
        raise ValidationDataError(
            "measured data not found: data/validation/ ships with the repository, not with an "
            f"installed wheel; run from a clone (pip install -e .) or set {ENV_VAR}")
    return folder


def table_path(path: Path) -> Path:
    """The file holding table ``path`` (a ``.csv`` name): itself, or its .xz / .gz copy."""
    for suffix in _OPENERS:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    raise ValidationDataError(f"{path}: table not found (nor {path.name}.xz or "
                              f"{path.name}.gz); expected one of them in {path.parent}")


def read_table(path: Path) -> list[dict[str, str]]:
    """Every row of table ``path`` (e.g. ``validation_dir() / "h100" / "gemm.csv"``), plain
    or compressed, as a dict keyed by the header."""
    return list(_rows(path))


def _rows(path: Path) -> Iterator[dict[str, str]]:
    found = table_path(path)
    opener = _OPENERS.get(found.suffix, open)
    with opener(found, "rt", encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


# each folder is one chip's collection, timed by one harness (data/validation/README.md);
# the MoE rows of h100/ come from TensorRT-LLM 1.3.0rc23, the same collector harness
COLLECTIONS: dict[str, tuple[str, str]] = {"a100": ("a100-sxm", "trtllm-1.0.0"),
                                           "h100": ("h100-sxm", "trtllm-1.3")}


def collection(folder: Path) -> tuple[ChipSpec, str]:
    """The chip a folder's tables measured and the harness that timed them."""
    try:
        chip, harness = COLLECTIONS[folder.name]
    except KeyError:
        raise ValidationDataError(f"{folder}: unknown collection {folder.name!r}; expected "
                                  f"one of {', '.join(COLLECTIONS)}") from None
    return load_chip(chip), harness


def gemm(folder: Path, table: str = "gemm.csv", dtype: str | None = None) -> list[Sample]:
    """GEMM rows of ``folder``'s table as the measured calls ran them (an fp8 row includes
    its activation's quantization), with the harness of the collection that timed them;
    ``dtype`` keeps one dtype's rows."""
    rows = list(_rows(folder / table))
    spec, harness = collection(folder)
    return [gemm_sample(int(r["m"]), int(r["n"]), int(r["k"]), table_dtype(r["dtype"]),
                        float(r["latency_ms"]) / 1e3, harness, spec)
            for r in rows if dtype is None or table_dtype(r["dtype"]) == dtype]


def gemm_bf16(folder: Path) -> list[Sample]:
    """The A100 table (gemm_bf16.csv)."""
    return gemm(folder, "gemm_bf16.csv")


def gemm_h100_bf16(folder: Path) -> list[Sample]:
    return gemm(folder, "gemm.csv", "bf16")


def gemm_h100_fp8(folder: Path) -> list[Sample]:
    return gemm(folder, "gemm.csv", "fp8_e4m3")


def _calls(folder: Path, table: str, call: Callable[[dict[str, str]], Op | Graph],
           label: Callable[[dict[str, str]], str]) -> list[Sample]:
    rows = list(_rows(folder / table))
    _, harness = collection(folder)
    return [Sample(call(r), float(r["latency_ms"]) / 1e3, label(r), harness) for r in rows]


def _attention_label(row: dict[str, str]) -> str:
    group = int(row["num_heads"]) // int(row["num_key_value_heads"])
    return f"{row['kv_cache_dtype']} cache, group {group}"


def context_attention(folder: Path) -> list[Sample]:
    """Prefill calls as ``_measured_attention.context_call`` reads a row: QKV
    pre-processing and the fused causal attention."""
    return _calls(folder, "context_attention.csv", context_call, _attention_label)


def generation_attention(folder: Path) -> list[Sample]:
    """Decode calls as ``_measured_attention.generation_call`` reads a row on the
    collection's chip (which decode kernel runs, and so whether a QKV pre-processing kernel
    runs before it, depends on the chip)."""
    chip, _ = collection(folder)
    return _calls(folder, "generation_attention.csv", lambda r: generation_call(r, chip),
                  _attention_label)


_COLLECTIVES = {"all_reduce": all_reduce, "all_gather": all_gather,
                "reduce_scatter": reduce_scatter, "alltoall": all_to_all}


# the nccl-tests build that timed each collection's collectives (aiconfigurator's
# collector/network: eager back-to-back calls timed with events, no CUDA graphs). The NCCL
# versions are aiconfigurator's (systems/data/<gpu>/comm/nccl/<version>/): the A100 rows
# are its 2.27.3 set; the H100 rows equal its 2.29.2 set value for value.
NCCL_HARNESS = {"a100": "nccl-tests-2.27.3", "h100": "nccl-tests-2.29.2"}


def nccl(folder: Path) -> list[Sample]:
    out = []
    harness = NCCL_HARNESS.get(folder.name, "none")
    for r in _rows(folder / "nccl.csv"):
        dtype = table_dtype(r["nccl_dtype"])
        op = _COLLECTIVES[r["op_name"]](int(r["elements"]), int(r["num_gpus"]), dtype)
        out.append(Sample(op, float(r["latency_ms"]) / 1e3, r["op_name"], harness))
    return out


def moe(folder: Path) -> list[Sample]:
    """Fused MoE layers (h100/moe.csv), as ``_measured_moe.moe_call`` reads a row."""
    return _calls(folder, "moe.csv", moe_call,
                  lambda r: f"{r['moe_dtype']} {r['distribution']}")


def llmcompass_matmul(folder: Path) -> list[Sample]:
    return [Sample(matmul(int(r["M"]), int(r["N"]), int(r["K"]), "fp16"),
                   float(r["latency_ms"]) / 1e3) for r in _rows(folder / "llmcompass_matmul.csv")]


def _throughput_rows(path: Path, make: Callable[[dict[str, str]], tuple[Op, int]]) -> list[Sample]:
    out = []
    for r in _rows(path):
        op, elems = make(r)
        out.append(Sample(op, elems / (float(r["gelem_per_s"]) * 1e9)))
    return out


def llmcompass_softmax(folder: Path) -> list[Sample]:
    return _throughput_rows(folder / "llmcompass_softmax.csv", lambda r: (
        softmax(int(r["M"]), int(r["N"]), "fp16"), int(r["M"]) * int(r["N"])))


def llmcompass_layernorm(folder: Path) -> list[Sample]:
    return _throughput_rows(folder / "llmcompass_layernorm.csv", lambda r: (
        layernorm(int(r["M"]), int(r["N"]), "fp16"), int(r["M"]) * int(r["N"])))


def llmcompass_gelu(folder: Path) -> list[Sample]:
    return _throughput_rows(folder / "llmcompass_gelu.csv", lambda r: (
        elementwise(int(r["M"]), "gelu", 1, 1, "fp16"), int(r["M"])))


def _gpt3_layer_ops(batch: int, q_len: int, kv_len: int, tp: int = 4) -> dict[str, Op]:
    """One GPT-3 175B layer per GPU under Megatron tensor parallelism (LLMCompass ae/figure5):
    d_model 12288, 96 heads of 128, unfused attention, fp16."""
    d, heads, hd = 12288, 96 // tp, 128
    tokens = batch * q_len
    dt = "fp16"
    return {
        "qkv_proj": matmul(tokens, 3 * d // tp, d, dt),
        "q_mul_k": matmul(q_len, kv_len, hd, dt, batch=batch * heads),
        "a_mul_v": matmul(q_len, hd, kv_len, dt, batch=batch * heads),
        "o_proj": matmul(tokens, d, d // tp, dt),
        "ffn_up": matmul(tokens, 4 * d // tp, d, dt),
        "ffn_down": matmul(tokens, d, 4 * d // tp, dt),
        "softmax": softmax(batch * heads * q_len, kv_len, dt),
        "layernorm_attn": layernorm(tokens, d, dt),
        "layernorm_ffn": layernorm(tokens, d, dt),
        "gelu": elementwise(tokens * 4 * d // tp, "gelu", 1, 1, dt),
        "allreduce_attn": all_reduce(tokens * d, tp, dt),
        "allreduce_ffn": all_reduce(tokens * d, tp, dt),
    }


def _gpt3_layer(path: Path, ops: dict[str, Op]) -> list[Sample]:
    return [Sample(ops[r["op"]], float(r["seconds"]), r["op"]) for r in _rows(path)]


def llmcompass_gpt3_prefill(folder: Path) -> list[Sample]:
    return _gpt3_layer(folder / "llmcompass_gpt3_layer_prefill_tp4.csv",
                       _gpt3_layer_ops(8, 2048, 2048))


def llmcompass_gpt3_decode(folder: Path) -> list[Sample]:
    return _gpt3_layer(folder / "llmcompass_gpt3_layer_decode_tp4.csv",
                       _gpt3_layer_ops(8, 1, 2048))


@dataclass(frozen=True)
class Table:
    folder: str  # the collection: a100 or h100
    load: Callable[[Path], list[Sample]]
    what: str
    kind: str = ""  # gemm, attention, moe or nccl: the issue-12 target that applies

    @property
    def chip(self) -> str:
        return COLLECTIONS[self.folder][0]

    def samples(self, root: Path | None = None) -> list[Sample]:
        return self.load((root or validation_dir()) / self.folder)


# every measured table, by name: its collection, its loader and what it measured
TABLES: dict[str, Table] = {
    "gemm_bf16": Table("a100", gemm_bf16, "cuBLAS bf16 GEMM, 9,240 shapes (TRT-LLM 1.0)",
                       "gemm"),
    "context_attention": Table(
        "a100", context_attention, "prefill attention: QKV pre-processing + fused causal "
        "attention", "attention"),
    "generation_attention": Table("a100", generation_attention,
                                  "fused decode attention over a KV cache", "attention"),
    "nccl": Table("a100", nccl, "NCCL collectives on 2-8 NVLink A100s", "nccl"),
    "llmcompass_matmul": Table("a100", llmcompass_matmul, "fp16 GEMM (LLMCompass fig. 5)"),
    "llmcompass_softmax": Table("a100", llmcompass_softmax, "row softmax, fp16 (LLMCompass)"),
    "llmcompass_layernorm": Table("a100", llmcompass_layernorm,
                                  "row layernorm, fp16 (LLMCompass)"),
    "llmcompass_gelu": Table("a100", llmcompass_gelu, "elementwise gelu, fp16 (LLMCompass)"),
    "gpt3_layer_prefill": Table("a100", llmcompass_gpt3_prefill,
                                "GPT-3 layer per op, TP4, prefill"),
    "gpt3_layer_decode": Table("a100", llmcompass_gpt3_decode,
                               "GPT-3 layer per op, TP4, decode"),
    "h100_gemm_bf16": Table("h100", gemm_h100_bf16, "bf16 Linear, 35,700 shapes "
                            "(TRT-LLM 1.3.0rc20)", "gemm"),
    "h100_gemm_fp8": Table("h100", gemm_h100_fp8, "fp8 Linear with dynamic activation "
                           "quantization, 35,700 shapes", "gemm"),
    "h100_context_attention": Table(
        "h100", context_attention, "prefill attention, bf16 and fp8 KV cache (fp8 FMHA)",
        "attention"),
    "h100_generation_attention": Table(
        "h100", generation_attention, "decode attention, bf16 and fp8 KV cache (XQA or "
        "masked MHA)", "attention"),
    "h100_moe": Table("h100", moe, "fused MoE layer (routing, grouped expert GEMMs, "
                      "combine), bf16 and fp8", "moe"),
    "h100_nccl": Table("h100", nccl, "NCCL collectives on 2-8 NVLink H100s", "nccl"),
}


@dataclass(frozen=True)
class TableScore:
    table: str
    rows: int
    median_ape: float  # median absolute percentage error, as a fraction
    p90_ape: float
    median_signed: float  # median of (predicted - measured) / measured

    def as_row(self) -> list[str]:
        return [self.table, str(self.rows), f"{100 * self.median_ape:.1f}%",
                f"{100 * self.p90_ape:.1f}%", f"{100 * self.median_signed:+.1f}%"]


def errors(samples: list[Sample], chip: ChipSpec, eff: Efficiency = DEFAULT) -> list[float]:
    """Signed relative error (predicted - measured) / measured per sample; a prediction is
    the call's kernels plus its harness's fixed cost."""
    return [(s.predicted_s(chip, eff) - s.measured_s) / s.measured_s for s in samples]


def error_stats(errs: list[float]) -> tuple[float, float, float]:
    """(median absolute, 90th-percentile absolute, median signed) of relative errors."""
    absolute = sorted(abs(e) for e in errs)
    p90 = absolute[min(len(absolute) - 1, int(0.9 * len(absolute)))]
    return statistics.median(absolute), p90, statistics.median(errs)


def score(name: str, samples: list[Sample], chip: ChipSpec,
          eff: Efficiency = DEFAULT) -> TableScore:
    errs = errors(samples, chip, eff)
    return TableScore(name, len(errs), *error_stats(errs))


# issue 12's targets for the held-out half (odd rows) of each table: median APE
TARGETS = {"gemm": 0.08, "attention": 0.10, "moe": 0.15, "nccl": 0.15}


def held_out(samples: list[Sample]) -> list[Sample]:
    """The odd rows: the fit (scripts/calibrate.py) uses only the even ones."""
    return samples[1::2]


def sample_size(sample: Sample) -> float:
    """FLOPs of the call's op or graph, or bytes for a collective (for size buckets)."""
    ops = sample.op.nodes if isinstance(sample.op, Graph) else ((sample.op, 1),)
    flops = sum(op.flops * count for op, count in ops if not isinstance(op, Collective))
    return flops or sum(op.bytes * count for op, count in ops)


def bucket_of(size: float, kind: str) -> str:
    """Size bucket: GFLOP decades, or MiB ranges for collectives."""
    if kind == "nccl":
        edges, unit, scale = (2**20, 16 * 2**20, 256 * 2**20), "MiB", 2**20
    else:
        edges, unit, scale = (1e9, 1e10, 1e11), "GFLOP", 1e9
    low = 0.0
    for edge in edges:
        if size < edge:
            return f"{low / scale:g}-{edge / scale:g} {unit}"
        low = edge
    return f">={low / scale:g} {unit}"


SCORES_FILE = Path(__file__).with_name("held_out_scores.json")


def held_out_scores() -> list[dict]:
    """The held-out error per measured table (chip, dtype, kind, median/p90/signed APE,
    target, met), as ``make validation`` last wrote it with the shipped parameters; it
    ships with the package, so a report needs no measured data."""
    import json

    return json.loads(SCORES_FILE.read_text())["scores"]


def score_all(folder: Path, eff: Efficiency = DEFAULT) -> list[TableScore]:
    return [score(name, table.load(folder / table.folder), load_chip(table.chip), eff)
            for name, table in TABLES.items()]
