"""chipforge.perf.calibrate: recovers planted efficiency parameters from timings the engine
itself generated (the oracle is the truth planted), refuses malformed rows with one error
naming file, line and column, leaves out rows faster than the datasheet allows, and
round-trips a calibration profile."""

from __future__ import annotations

import csv
import random
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from chipforge.arch import load_chip
from chipforge.ops import matmul
from chipforge.perf import (
    DEFAULT,
    CalibrationError,
    calibrate,
    estimate,
    load_calibration,
    read_profile,
    write_profile,
)

CHIP = load_chip("h100-sxm")
TRUTH = replace(DEFAULT, clock_fraction=0.7, dram_efficiency=0.6)
SIZES = (1, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def shapes(count: int = 100, seed: int = 12) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    return [(rng.choice(SIZES), rng.choice(SIZES[3:]), rng.choice(SIZES[3:]))
            for _ in range(count)]


def write_gemm(path: Path, rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["dtype", "m", "n", "k", "latency_ms"])
        writer.writerows(rows)
    return path


def truth_rows(eff=TRUTH) -> list[list[object]]:
    return [["bf16", m, n, k, estimate(matmul(m, n, k, "bf16"), CHIP, eff).seconds * 1e3]
            for m, n, k in shapes()]


@pytest.fixture(scope="module")
def truth_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gemm(tmp_path_factory.mktemp("cal") / "gemm.csv", truth_rows())


@pytest.fixture(scope="module")
def fitted(truth_csv: Path):
    return calibrate(CHIP, gemm=truth_csv)


def test_recovers_planted_parameters(fitted) -> None:
    assert fitted.efficiency.clock_fraction == pytest.approx(0.7, rel=0.02)
    assert fitted.efficiency.dram_efficiency == pytest.approx(0.6, rel=0.02)
    # nothing planted there, nothing learnt: the link fields had no rows to fit them
    assert fitted.efficiency.link_efficiency == DEFAULT.link_efficiency


def test_residuals_before_and_after(fitted) -> None:
    (table,) = fitted.tables
    assert table.rows == 100 and table.implausible == 0
    # from DEFAULT the engine is too fast for the slower planted chip: errors negative
    assert table.before.median_signed < -0.03
    assert table.before.median_ape > 10 * table.after.median_ape
    assert table.after.median_ape < 0.01
    assert abs(table.after.median_signed) < 0.01
    assert sum(b[1] for b in table.after.buckets) == 100


def test_implausible_rows_left_out_and_counted(tmp_path: Path) -> None:
    rows = truth_rows()
    m, n, k = 8192, 8192, 8192
    too_fast = 2 * m * n * k / CHIP.peak_flops("bf16") / 2  # twice the datasheet's peak
    m2, n2, k2 = 1, 8192, 8192  # a GEMV: its 128 MiB of weights faster than HBM allows
    too_fast_bytes = (n2 * k2 * 2) / CHIP.hbm_bandwidth_bytes_per_s / 3
    # 34 MB of operands fit H100's 50 MB L2: 1.2x the HBM peak is possible there, kept
    m3, n3, k3 = 8192, 64, 2048
    l2_hot = (m3 * k3 + k3 * n3 + m3 * n3) * 2 / CHIP.hbm_bandwidth_bytes_per_s / 1.2
    assert (m3 * k3 + k3 * n3 + m3 * n3) * 2 < CHIP.shared_buffer.size_bytes
    rows += [["bf16", m, n, k, too_fast * 1e3], ["bf16", m2, n2, k2, too_fast_bytes * 1e3],
             ["bf16", m3, n3, k3, l2_hot * 1e3]]
    result = calibrate(CHIP, gemm=write_gemm(tmp_path / "g.csv", rows))
    (table,) = result.tables
    assert (table.rows, table.implausible, table.after.rows) == (103, 2, 101)
    assert result.efficiency.clock_fraction == pytest.approx(0.7, rel=0.02)


@pytest.mark.parametrize(("row", "needle"), [
    (["bf16", "64", "x", "64", "0.01"], "line 3: column 'n' is 'x'"),
    (["bf16", "64", "64", "64", "nan"], "line 3: column 'latency_ms' is 'nan'"),
    (["bf16", "64", "64", "64", "-1"], "line 3: column 'latency_ms' is '-1'"),
    (["bf17", "64", "64", "64", "0.01"], "line 3: column 'dtype' is 'bf17'"),
    (["bf16", "64", "64"], "line 3: column 'k' is empty or missing"),
    (["bf16", str(2**49), "64", "64", "0.01"], "line 3: matmul: m must be at most 2"),
])
def test_malformed_row_is_one_error(tmp_path: Path, row: list[str], needle: str) -> None:
    path = write_gemm(tmp_path / "bad.csv", [["bf16", 64, 64, 64, 0.01], row])
    with pytest.raises(CalibrationError, match=f"{path.name}: {needle}.*(expected|got)"):
        calibrate(CHIP, gemm=path)


def test_missing_column_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("dtype,m,n,latency_ms\nbf16,1,2,3\n")
    with pytest.raises(CalibrationError, match="line 1: header lacks k"):
        calibrate(CHIP, gemm=path)
    with pytest.raises(CalibrationError, match="cannot read the table"):
        calibrate(CHIP, gemm=tmp_path / "absent.csv")
    with pytest.raises(CalibrationError, match="no measured table given"):
        calibrate(CHIP)


def test_profile_round_trip(fitted, tmp_path: Path) -> None:
    path = write_profile(fitted, tmp_path / "p.yaml")
    profile = read_profile(path)
    assert profile.efficiency == fitted.efficiency
    assert load_calibration(path) == fitted.efficiency
    assert profile.chip == "h100-sxm"
    used = profile.document["fitted_on"]["gemm"]
    assert (used["rows"], used["implausible"]) == (100, 0)
    assert profile.document["residuals"]["gemm"]["after"]["median_ape"] < 0.01


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda d: d["efficiency"].update(turbo=1.0), "unknown field efficiency.turbo"),
    (lambda d: d.update(extra=1), "unknown field 'extra'"),
    (lambda d: d["efficiency"].update(clock_fraction=1.5),
     r"efficiency.clock_fraction is 1.5; expected a number in \(0, 1\]"),
    (lambda d: d["efficiency"].update(dram_efficiency=float("inf")),
     "efficiency.dram_efficiency is inf"),
    (lambda d: d["efficiency"].update(launch_overhead_s="fast"),
     "efficiency.launch_overhead_s is 'fast'; expected a number of seconds"),
    (lambda d: d["efficiency"].update(link_latency_s=True), "efficiency.link_latency_s is True"),
    (lambda d: d["efficiency"].pop("link_efficiency"), "efficiency.link_efficiency is missing"),
    (lambda d: d.update(chipforge_calibration=2), "chipforge_calibration is 2"),
])
def test_malformed_profile_is_one_error(fitted, tmp_path: Path, edit, needle: str) -> None:
    import yaml

    doc = fitted.profile()
    edit(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CalibrationError, match=f"{path.name}: {needle}"):
        load_calibration(path)


def test_shipped_default_is_a_valid_profile_value(tmp_path: Path) -> None:
    """The shipped parameters pass the profile checks (its bounds admit the default)."""
    import yaml

    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"chipforge_calibration": 1, "chip": "a100-sxm",
                                    "efficiency": asdict(DEFAULT)}))
    assert load_calibration(path) == DEFAULT


def _slice(table: str, path: Path, every: int = 97) -> list:
    """Every ``every``-th row of a vendored A100 table, written as a plain CSV at ``path``."""
    from chipforge.perf import validation as v

    rows = v.read_table(v.validation_dir() / "a100" / f"{table}.csv")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[::every])
    loader = {"context_attention": v.context_attention,
              "generation_attention": v.generation_attention, "nccl": v.nccl}[table]
    # a user's file names no harness: the same calls without the collector's fixed cost
    return [replace(s, harness="none")
            for s in loader(v.validation_dir() / "a100")[::every]]


def test_attention_and_nccl_rows_read_as_the_validation_loaders_do(tmp_path: Path) -> None:
    """The user-file readers build the same ops as chipforge.perf.validation's loaders:
    the residuals of a zero-round fit equal validation.score's on the same A100 rows, and
    none of these measured rows is flagged as faster than the datasheet."""
    from chipforge.perf import validation as v

    a100 = load_chip("a100-sxm")
    given = {"attention": "context_attention", "decode_attention": "generation_attention",
             "nccl": "nccl"}
    expected = {key: _slice(table, tmp_path / f"{table}.csv") for key, table in given.items()}
    result = calibrate(a100, rounds=0, **{k: tmp_path / f"{t}.csv" for k, t in given.items()})
    assert result.efficiency == DEFAULT
    for fit in result.tables:
        score = v.score(fit.table, expected[fit.table], a100)
        assert (fit.rows, fit.implausible) == (score.rows, 0)
        assert fit.before.median_ape == pytest.approx(score.median_ape, rel=1e-12)
        assert fit.before.median_signed == pytest.approx(score.median_signed, rel=1e-12)


def test_recovers_planted_link_parameters(tmp_path: Path) -> None:
    from chipforge.ops import all_gather, all_reduce

    truth = replace(DEFAULT, link_efficiency=0.45, link_latency_s=3e-6)
    path = tmp_path / "nccl.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["op_name", "nccl_dtype", "num_gpus", "elements", "latency_ms"])
        for name, make in (("all_reduce", all_reduce), ("all_gather", all_gather)):
            for gpus in (2, 4, 8):
                for elements in (2**10, 2**14, 2**18, 2**22, 2**26):
                    seconds = estimate(make(elements, gpus, "fp16"), CHIP, truth).seconds
                    writer.writerow([name, "half", gpus, elements, seconds * 1e3])
    result = calibrate(CHIP, nccl=path)
    assert result.efficiency.link_efficiency == pytest.approx(0.45, rel=0.03)
    assert result.efficiency.link_latency_s == pytest.approx(3e-6, rel=0.05)
    assert result.efficiency.clock_fraction == DEFAULT.clock_fraction  # no GEMM rows


def test_malformed_nccl_and_attention_rows(tmp_path: Path) -> None:
    nccl = tmp_path / "n.csv"
    nccl.write_text("op_name,nccl_dtype,num_gpus,elements,latency_ms\n"
                    "all_reduce,half,8,1024,0.02\nbroadcast,half,8,1024,0.02\n")
    with pytest.raises(CalibrationError, match="n.csv: line 3: column 'op_name' is "
                                              "'broadcast'; expected one of all_reduce"):
        calibrate(CHIP, nccl=nccl)
    attn = tmp_path / "a.csv"
    attn.write_text("batch_size,seq_len,num_heads,num_key_value_heads,head_dim,attn_dtype,"
                    "kv_cache_dtype,step,latency_ms\n1,1,32,8,128,bfloat16,bfloat16,-1,0.01\n")
    with pytest.raises(CalibrationError, match="a.csv: line 2: column 'step' is '-1'; "
                                               "expected a non-negative integer"):
        calibrate(CHIP, decode_attention=attn)


def test_dtype_the_chip_lacks_is_one_error(tmp_path: Path) -> None:
    path = write_gemm(tmp_path / "fp8.csv", [["bf16", 64, 64, 64, 0.01],
                                            ["fp8", 64, 64, 64, 0.01]])
    with pytest.raises(CalibrationError, match="fp8.csv: line 3: column 'dtype' is 'fp8', "
                                               "which a100-sxm has no matrix unit for"):
        calibrate(load_chip("a100-sxm"), gemm=path)


def test_a_fit_stays_within_what_a_profile_may_hold(tmp_path: Path) -> None:
    """A timing of 1e300 s drives the latencies to their bound, not past it: the profile
    written from any fit loads back."""
    result = calibrate(CHIP, gemm=write_gemm(tmp_path / "slow.csv", [["bf16", 64, 64, 64,
                                                                       1e300]]))
    assert result.efficiency.launch_overhead_s <= 1e-3
    assert load_calibration(write_profile(result, tmp_path / "p.yaml")) == result.efficiency
