"""Fit the shared efficiency parameters to measured timings, and calibration profiles.

``calibrate(chip, gemm=..., attention=..., nccl=...)`` fits the fields of
:class:`~chipforge.machine.Efficiency` by coordinate descent, the procedure that produced
the shipped default (``scripts/calibrate.py``): the core fields (clock, DRAM, launch and
pipeline latency) on the GEMM and attention rows, then the link fields on the NCCL rows.
The loss is the median absolute percentage error plus a tenth of the mean absolute log
error (ties between medians broken toward a smaller tail).

Measured tables use the CSV schemas of ``data/validation/`` (its README). Every row is
checked against the chip's datasheet: a timing faster than its peak FLOP/s or its peak
DRAM bandwidth allows cannot be a measurement of that chip and is left out, counted.
A profile is YAML: the fitted fields, the chip and files, row counts and residuals.
"""

from __future__ import annotations

import csv
import lzma
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from chipforge.arch import ChipSpec, load_chip
from chipforge.errors import ChipforgeError
from chipforge.machine import DEFAULT, Efficiency
from chipforge.ops import dtype_bytes, matmul
from chipforge.perf._calibration_profile import (
    PROFILE_BOUNDS,
    PROFILE_VERSION,
    CalibrationError,
)
from chipforge.perf._measured import TABLE_DTYPES, table_dtype
from chipforge.perf._measured_attention import context_call, generation_call
from chipforge.perf.validation import (
    _COLLECTIVES,
    _OPENERS,
    Sample,
    bucket_of,
    error_stats,
    sample_size,
)

CORE_FIELDS = ("clock_fraction", "dram_efficiency", "launch_overhead_s", "pipeline_latency_s")
LINK_FIELDS = ("link_efficiency", "link_latency_s")
# the search's bounds (scripts/calibrate.py's): a sustained clock under half the rated one,
# or DRAM / links under 40% / 30% of peak, would be a broken measurement, not a chip; the
# latencies stay within what a profile may hold, so every fit can be loaded back
FIT_BOUNDS = {**PROFILE_BOUNDS, "clock_fraction": (0.5, 1.0), "dram_efficiency": (0.4, 1.0),
              "link_efficiency": (0.3, 1.0)}
# assumption: bounded time and memory; a million rows is ~14x the largest measured table
MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class Row:
    """One measured row: what ran, its time, a size for bucketing and the datasheet floor."""

    sample: Sample
    size: float  # FLOPs (GEMM, attention) or bytes (collectives)
    floor_s: float  # the fastest the datasheet allows; a faster timing is implausible
    line: int


@dataclass(frozen=True)
class Residuals:
    rows: int
    median_ape: float  # fractions
    p90_ape: float
    median_signed: float  # of (predicted - measured) / measured
    buckets: tuple[tuple[str, int, float, float, float], ...]  # (label, rows, med, p90, sgn)


@dataclass(frozen=True)
class TableFit:
    table: str  # gemm, attention, decode_attention or nccl
    source: str  # the file, or "samples"
    rows: int  # rows read
    implausible: int  # rows left out: faster than the datasheet allows
    before: Residuals
    after: Residuals


@dataclass(frozen=True)
class CalibrationResult:
    chip: str
    start: Efficiency
    efficiency: Efficiency
    tables: tuple[TableFit, ...] = field(default=())

    def profile(self) -> dict[str, Any]:
        """The calibration profile document (what :func:`write_profile` writes)."""
        return {"chipforge_calibration": PROFILE_VERSION, "chip": self.chip,
                "efficiency": asdict(self.efficiency),
                "fitted_on": {t.table: {"file": t.source, "rows": t.rows,
                                        "used": t.rows - t.implausible,
                                        "implausible": t.implausible} for t in self.tables},
                "residuals": {t.table: {"before": _residual_doc(t.before),
                                        "after": _residual_doc(t.after)}
                              for t in self.tables}}


def _residual_doc(r: Residuals) -> dict[str, Any]:
    return {"rows": r.rows, "median_ape": r.median_ape, "p90_ape": r.p90_ape,
            "median_signed": r.median_signed,
            "buckets": [{"size": b[0], "rows": b[1], "median_ape": b[2], "p90_ape": b[3],
                         "median_signed": b[4]} for b in r.buckets]}


# ---- reading measured tables -----------------------------------------------------------

def _cell(path: Path, line: int, row: dict[str, str], column: str, kind: type,
          zero: bool = False) -> Any:
    text = row.get(column)
    if text is None:
        raise CalibrationError(f"{path}: line {line}: column {column!r} is empty or missing; "
                               f"expected a {'positive integer' if kind is int else 'value'}")
    if kind is str:
        return text.strip()
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        want = ("non-negative" if zero else "positive") + (
            " integer" if kind is int else " finite number")
        raise CalibrationError(f"{path}: line {line}: column {column!r} is {text!r}; "
                               f"expected a {want}")
    return value


def _dtype(path: Path, line: int, text: str, column: str,
           chip: ChipSpec | None = None) -> str:
    """The engine's dtype for ``text``; with ``chip``, one its matrix unit runs."""
    dtype = TABLE_DTYPES.get(text.strip().lower())
    if dtype is None:
        raise CalibrationError(f"{path}: line {line}: column {column!r} is {text!r}; expected "
                               f"one of {', '.join(sorted(TABLE_DTYPES))}")
    if chip is not None and chip.peak_flops(dtype) <= 0:
        raise CalibrationError(f"{path}: line {line}: column {column!r} is {text!r}, which "
                               f"{chip.name} has no matrix unit for; expected one of "
                               f"{', '.join(chip.supported_dtypes)}")
    return dtype


Getter = Callable[..., Any]  # get(column, type, zero_allowed=False) of one row


def _read_rows(path: Path, columns: tuple[str, ...],
               make: Callable[[Getter, int], Row]) -> list[Row]:
    path = Path(path)
    try:
        # plain, or compressed as the vendored tables are (.xz, .gz)
        fh = _OPENERS.get(path.suffix, open)(path, "rt", encoding="utf-8", newline="")
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read the table: {exc.strerror}") from None
    rows = []
    with fh:
        try:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise CalibrationError(f"{path}: line 1: header lacks {', '.join(missing)}; "
                                       f"expected the columns {', '.join(columns)}")
            for record in reader:
                line = reader.line_num
                if len(rows) >= MAX_ROWS:
                    raise CalibrationError(f"{path}: more than {MAX_ROWS:,} rows; expected "
                                           "at most that many")
                try:
                    rows.append(make(lambda c, k, z=False, r=record, n=line:
                                     _cell(path, n, r, c, k, z), line))
                except CalibrationError:
                    raise
                except ChipforgeError as exc:  # the op the row describes is refused
                    raise CalibrationError(f"{path}: line {line}: {exc}") from None
        except (UnicodeDecodeError, csv.Error, OSError, EOFError, lzma.LZMAError) as exc:
            raise CalibrationError(f"{path}: not a UTF-8 CSV table (plain, .xz or .gz): "
                                   f"{exc}") from None
    if not rows:
        raise CalibrationError(f"{path}: no data rows; expected at least one")
    return rows


def _bytes_floor_s(moved_bytes: float, chip: ChipSpec) -> float:
    """The fastest ``moved_bytes`` can be moved once: at peak DRAM bandwidth, or, when they
    fit the shared buffer (L2), at its bandwidth (a kernel timed back to back can find its
    operands there: measured H100 GEMMs of 25-34 MB run at up to 1.28x the HBM peak)."""
    buffer = chip.shared_buffer
    if moved_bytes <= buffer.size_bytes:
        return moved_bytes / max(buffer.bandwidth_bytes_per_s, chip.hbm_bandwidth_bytes_per_s)
    return moved_bytes / chip.hbm_bandwidth_bytes_per_s


def read_gemm(path: Path, chip: ChipSpec) -> list[Row]:
    """GEMM rows (dtype, m, n, k, latency_ms). Floor: the dtype's peak FLOP/s and the
    operands and result moved once (:func:`_bytes_floor_s`)."""
    def make(get: Getter, line: int) -> Row:
        dtype = _dtype(path, line, get("dtype", str), "dtype", chip)
        m, n, k = get("m", int), get("n", int), get("k", int)
        flops = 2.0 * m * n * k
        moved = (m * k + k * n + m * n) * dtype_bytes(dtype)
        floor = max(flops / chip.peak_flops(dtype), _bytes_floor_s(moved, chip))
        return Row(Sample(matmul(m, n, k, dtype), get("latency_ms", float) / 1e3),
                   flops, floor, line)
    return _read_rows(path, ("dtype", "m", "n", "k", "latency_ms"), make)


_ATTN = ("batch_size", "seq_len", "num_heads", "num_key_value_heads", "head_dim",
         "attn_dtype", "kv_cache_dtype", "step", "latency_ms")


def _attention_row(path: Path, line: int, get: Getter) -> dict[str, str]:
    """A row's columns, each checked, in the form ``_measured_attention`` reads."""
    row = {c: str(get(c, int)) for c in ("batch_size", "seq_len", "num_heads",
                                         "num_key_value_heads", "head_dim")}
    row["step"] = str(get("step", int, True))
    for column in ("attn_dtype", "kv_cache_dtype"):
        row[column] = get(column, str)
        _dtype(path, line, row[column], column)
    return row


def read_attention(path: Path, chip: ChipSpec) -> list[Row]:
    """Prefill (context) attention rows, as the validation tables model them
    (``_measured_attention.context_call``: QKV pre-processing and the causal fused
    attention). Floor: the causal attention's 2*b*h*s^2*d FLOPs at the chip's peak."""
    def make(get: Getter, line: int) -> Row:
        row = _attention_row(path, line, get)
        b, seq, heads = (int(row[c]) for c in ("batch_size", "seq_len", "num_heads"))
        flops = 2.0 * b * heads * seq * seq * int(row["head_dim"])
        peak = max(chip.peak_flops("bf16"), chip.peak_flops("fp8_e4m3"))
        return Row(Sample(context_call(row), get("latency_ms", float) / 1e3), flops,
                   flops / peak, line)
    return _read_rows(path, _ATTN, make)


def read_decode_attention(path: Path, chip: ChipSpec) -> list[Row]:
    """Decode (generation) attention rows (``_measured_attention.generation_call``): one
    query token over seq_len + step cached tokens. Floor: the KV cache read once
    (:func:`_bytes_floor_s`)."""
    def make(get: Getter, line: int) -> Row:
        row = _attention_row(path, line, get)
        b, heads, kv_heads, dim = (int(row[c]) for c in ("batch_size", "num_heads",
                                                          "num_key_value_heads", "head_dim"))
        kv = int(row["seq_len"]) + int(row["step"])  # the cache holds seq_len + step
        cache = table_dtype(row["kv_cache_dtype"])
        moved = 2.0 * b * kv * kv_heads * dim * dtype_bytes(cache)
        return Row(Sample(generation_call(row, chip), get("latency_ms", float) / 1e3),
                   4.0 * b * heads * kv * dim, _bytes_floor_s(moved, chip), line)
    return _read_rows(path, _ATTN, make)


def read_nccl(path: Path, chip: ChipSpec) -> list[Row]:
    """NCCL rows (op_name, nccl_dtype, num_gpus, elements, latency_ms). No datasheet floor
    is applied: what a row's bytes mean per GPU differs by collective and NCCL algorithm."""
    def make(get: Getter, line: int) -> Row:
        name = get("op_name", str)
        if name not in _COLLECTIVES:
            raise CalibrationError(f"{path}: line {line}: column 'op_name' is {name!r}; "
                                   f"expected one of {', '.join(_COLLECTIVES)}")
        dtype = _dtype(path, line, get("nccl_dtype", str), "nccl_dtype")
        elements, gpus = get("elements", int), get("num_gpus", int)
        op = _COLLECTIVES[name](elements, gpus, dtype)
        return Row(Sample(op, get("latency_ms", float) / 1e3, name),
                   elements * dtype_bytes(dtype), 0.0, line)
    return _read_rows(path, ("op_name", "nccl_dtype", "num_gpus", "elements", "latency_ms"),
                      make)


# ---- fitting -----------------------------------------------------------------------------

Group = tuple[ChipSpec, Sequence[Sample]]  # one measured table and the chip it measured
HARNESS_PREFIX = "harness:"  # a fitted name "harness:<name>" is that harness's overhead


def _table_loss(chip: ChipSpec, samples: Sequence[Sample], eff: Efficiency,
                overheads: dict[str, float]) -> float:
    """Median absolute percentage error plus a tenth of the mean absolute log error."""
    logs = [math.log(s.predicted_s(chip, eff, overheads) / s.measured_s) for s in samples]
    ape = sorted(abs(math.expm1(x)) for x in logs)
    return ape[len(ape) // 2] + 0.1 * sum(abs(x) for x in logs) / len(logs)


def loss(groups: Sequence[Group], eff: Efficiency,
         overheads: dict[str, float] | None = None) -> float:
    """The sum of each table's loss: every table counts alike, whatever its row count."""
    return sum(_table_loss(chip, samples, eff, overheads or {}) for chip, samples in groups)


def _stepped(eff: Efficiency, overheads: dict[str, float], name: str,
             factor: float) -> tuple[Efficiency, dict[str, float]] | None:
    """``name`` scaled by ``factor`` within ``FIT_BOUNDS``, or None outside them."""
    if name.startswith(HARNESS_PREFIX):
        key = name.removeprefix(HARNESS_PREFIX)
        value = overheads[key] * factor
        low, high = PROFILE_BOUNDS["launch_overhead_s"]  # a fixed cost per call, like it
        return (eff, {**overheads, key: value}) if low <= value <= high else None
    value = getattr(eff, name) * factor
    low, high = FIT_BOUNDS[name]
    return (replace(eff, **{name: value}), overheads) if low <= value <= high else None


def fit_groups(groups: Sequence[Group], eff: Efficiency, names: Sequence[str],
               overheads: dict[str, float] | None = None, rounds: int = 6,
               log: Callable[[str], None] | None = None
               ) -> tuple[Efficiency, dict[str, float]]:
    """Coordinate descent over ``names`` (Efficiency fields, and ``harness:<name>`` for a
    harness's fixed cost per call) on several chips' tables at once: multiplicative steps
    of 10%, halved in log each round, each kept while it lowers :func:`loss`."""
    overheads = dict(overheads or {})
    best = loss(groups, eff, overheads)
    step = 1.1
    for _ in range(rounds):
        for name in names:
            improved = True
            while improved:
                improved = False
                for factor in (step, 1 / step):
                    trial = _stepped(eff, overheads, name, factor)
                    if trial is None:
                        continue
                    current = loss(groups, *trial)
                    if current < best:
                        best, (eff, overheads), improved = current, trial, True
                        break
        step = math.sqrt(step)
        if log is not None:
            log(f"loss {best:.4f}  {eff}  {overheads}")
    return eff, overheads


def fit(samples: Sequence[Sample], chip: ChipSpec, eff: Efficiency, names: Sequence[str],
        rounds: int = 6, log: Callable[[str], None] | None = None) -> Efficiency:
    """:func:`fit_groups` on one chip's rows."""
    return fit_groups([(chip, samples)], eff, names, rounds=rounds, log=log)[0]


def residuals(rows: Sequence[Row], chip: ChipSpec, eff: Efficiency,
              table: str = "gemm") -> Residuals:
    """Median, p90 and signed median of the relative error, overall and by size bucket."""
    errs = [(r.sample.predicted_s(chip, eff) - r.sample.measured_s) / r.sample.measured_s
            for r in rows]
    groups: dict[str, list[float]] = {}
    for r, e in sorted(zip(rows, errs, strict=True), key=lambda pair: pair[0].size):
        groups.setdefault(bucket_of(r.size, table), []).append(e)
    return Residuals(len(errs), *error_stats(errs),
                     tuple((k, len(v), *error_stats(v)) for k, v in groups.items()))


Table = Path | str | Sequence[Sample] | None
_READERS = {"gemm": read_gemm, "attention": read_attention,
            "decode_attention": read_decode_attention, "nccl": read_nccl}


def _load(table: str, given: Table, chip: ChipSpec) -> tuple[str, list[Row], int]:
    """(source, plausible rows, rows left out as implausible)."""
    if isinstance(given, (str, Path)):
        rows = _READERS[table](Path(given), chip)
        source = str(given)
    else:  # samples already built (scripts/calibrate.py): no datasheet floor known here
        rows = [Row(s, sample_size(s), 0.0, i) for i, s in enumerate(given or ())]
        source = "samples"
    kept = [r for r in rows if r.sample.measured_s >= r.floor_s]
    return source, kept, len(rows) - len(kept)


def calibrate(chip: ChipSpec | str, gemm: Table = None, attention: Table = None,
              decode_attention: Table = None, nccl: Table = None, start: Efficiency = DEFAULT,
              rounds: int = 6, log: Callable[[str], None] | None = None) -> CalibrationResult:
    """Fit :class:`Efficiency` to measured tables (CSV paths, or lists of
    ``validation.Sample``) from ``start``: the core fields on the GEMM and attention rows,
    the link fields on the NCCL rows; a field with no rows to fit it keeps its start value.
    Rows faster than the datasheet allows are left out and counted."""
    spec = load_chip(chip) if isinstance(chip, str) else chip
    given = {"gemm": gemm, "attention": attention, "decode_attention": decode_attention,
             "nccl": nccl}
    loaded = {t: _load(t, g, spec) for t, g in given.items() if g is not None}
    if not loaded:
        raise CalibrationError("no measured table given; expected at least one of gemm, "
                               "attention, decode_attention or nccl")
    for t, (source, kept, _) in loaded.items():
        if not kept:
            raise CalibrationError(f"{source}: every {t} row is faster than {spec.name}'s "
                                   "datasheet allows; expected measurements of that chip")
    eff = start
    core = [r.sample for t, (_, kept, _) in loaded.items() if t != "nccl" for r in kept]
    if core:
        eff = fit(core, spec, eff, CORE_FIELDS, rounds, log)
    if "nccl" in loaded:
        eff = fit([r.sample for r in loaded["nccl"][1]], spec, eff, LINK_FIELDS, rounds, log)
    tables = tuple(TableFit(t, source, len(kept) + dropped, dropped,
                            residuals(kept, spec, start, t), residuals(kept, spec, eff, t))
                   for t, (source, kept, dropped) in loaded.items())
    return CalibrationResult(spec.name, start, eff, tables)
