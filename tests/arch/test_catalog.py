"""The shipped catalog: every chip loads, every number has provenance, and the figures
match the vendors' datasheets (table "Published figures" in /work/shared/notes/README.md).

Oracles are the published numbers written out below, never values read back from the
catalog YAML.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from chipforge.arch import BITS, DTYPES, catalog_names, load_chip
from chipforge.arch._loader import catalog_path, unwrap_provenance

CATALOG = ["a100-sxm", "ascend-910b", "ascend-910c", "b200", "b300", "forge-i1", "forge-t1",
           "gb200", "h100-sxm", "h20", "h200-sxm", "h800-sxm", "l40s", "rtx-pro-6000-server",
           "tpu-v5e"]

T = 1e12
GB = 1e9

# Dense peak rates from the datasheets (notes table). Key: catalog dtype -> FLOP/s or OP/s.
# fp8 rates are the E4M3 rate; Hopper/Blackwell run E5M2 at the same rate.
PEAKS: dict[str, dict[str, float]] = {
    "a100-sxm": {"bf16": 312 * T, "int8": 624 * T},
    "h100-sxm": {"bf16": 989 * T, "fp8_e4m3": 1979 * T, "fp8_e5m2": 1979 * T},
    "h200-sxm": {"bf16": 989 * T, "fp8_e4m3": 1979 * T},  # "as H100"
    "h20": {"bf16": 148 * T, "fp8_e4m3": 296 * T},
    "b200": {"bf16": 2250 * T, "fp8_e4m3": 4500 * T},
    "tpu-v5e": {"bf16": 197 * T, "int8": 393 * T},
}

# (capacity bytes, bandwidth bytes/s) from the notes table; vendors quote decimal GB.
MEMORY: dict[str, tuple[float | None, float]] = {
    "a100-sxm": (80 * GB, 2039 * GB),
    "h100-sxm": (80 * GB, 3.35 * T),
    "h20": (96 * GB, 4.0 * T),
    "h200-sxm": (141 * GB, 4.8 * T),
    "b200": (192 * GB, 8 * T),
    "tpu-v5e": (16 * GB, 819 * GB),
}

TDP_W = {"a100-sxm": 400, "h100-sxm": 700, "h20": 400, "h200-sxm": 700, "b200": 1000}

# die areas given in the notes: A100 826 mm2 (N7), H100 814 mm2 (4N); H20 is GH100 too.
DIE_MM2 = {"a100-sxm": 826, "h100-sxm": 814, "h20": 814}

# NVLink totals from the notes: H100 900 GB/s, B200 1.8 TB/s (both directions).
NVLINK_TOTAL = {"h100-sxm": 900 * GB, "b200": 1.8 * T}

PROCESS = {"a100-sxm": "N7", "h100-sxm": "4N"}


def test_catalog_names_are_the_catalog_chips():
    assert catalog_names() == sorted(CATALOG)


@pytest.mark.parametrize("name", CATALOG)
def test_chip_loads(name):
    chip = load_chip(name)
    assert chip.name == name
    assert chip.kind in ("gpu", "accelerator")


@pytest.mark.parametrize("name", CATALOG)
def test_every_number_has_provenance(name):
    raw = yaml.safe_load(catalog_path(name).read_text())
    _, sources, bare = unwrap_provenance(raw)
    assert bare == []
    # every recorded provenance is either a source or an assumption, with some text
    for path, text in sources.items():
        kind, _, body = text.partition(": ")
        assert kind in ("source", "assumption"), path
        assert body.strip(), path


def test_provenance_check_flags_bare_numbers():
    # the oracle of the test above must be able to fail: bare ints, floats and quantity
    # strings are flagged, wrapped ones and plain words are not
    raw = {"a": 5, "b": {"value": 1, "source": "x"}, "c": "3 GHz", "d": "HBM3",
           "e": [{"f": 2.5}, {"value": "4 W", "assumption": "y"}], "g": True}
    clean, sources, bare = unwrap_provenance(raw)
    assert bare == ["a", "c", "e[0].f"]
    assert sources == {"b": "source: x", "e[1]": "assumption: y"}
    assert clean == {"a": 5, "b": 1, "c": "3 GHz", "d": "HBM3",
                     "e": [{"f": 2.5}, "4 W"], "g": True}


PEAK_CASES = [(chip, dtype, value) for chip, rates in PEAKS.items()
              for dtype, value in rates.items()]


@pytest.mark.parametrize(("name", "dtype", "published"), PEAK_CASES,
                         ids=[f"{c}-{d}" for c, d, _ in PEAK_CASES])
def test_dense_peak_matches_datasheet(name, dtype, published):
    assert load_chip(name).peak_flops(dtype) == pytest.approx(published, rel=0.01)


def test_unsupported_dtype_has_zero_peak():
    # TPU v5e docs list bf16 and int8 only; A100 has no fp8 tensor cores
    assert load_chip("tpu-v5e").peak_flops("fp8_e4m3") == 0.0
    assert load_chip("a100-sxm").peak_flops("fp8_e4m3") == 0.0
    assert load_chip("tpu-v5e").supported_dtypes == ("bf16", "int8")


@pytest.mark.parametrize("name", sorted(MEMORY))
def test_memory_matches_datasheet(name):
    capacity, bandwidth = MEMORY[name]
    chip = load_chip(name)
    assert chip.memory.capacity_bytes == pytest.approx(capacity, rel=1e-9)
    assert chip.memory.bandwidth_bytes_per_s == pytest.approx(bandwidth, rel=1e-9)
    assert chip.hbm_bandwidth_bytes_per_s == pytest.approx(bandwidth, rel=1e-9)


@pytest.mark.parametrize("name", sorted(TDP_W))
def test_tdp_matches_datasheet(name):
    assert load_chip(name).tdp_w == pytest.approx(TDP_W[name], rel=1e-9)


@pytest.mark.parametrize("name", sorted(DIE_MM2))
def test_die_area_matches_published(name):
    assert load_chip(name).die_area_mm2 == pytest.approx(DIE_MM2[name], rel=1e-9)


def test_tpu_v5e_die_area_is_omitted():
    # Google publishes no v5e die area (blank in the notes table): the spec must not invent one
    assert load_chip("tpu-v5e").die_area_mm2 is None


@pytest.mark.parametrize("name", sorted(PROCESS))
def test_process_node(name):
    assert load_chip(name).process_node == PROCESS[name]


def test_h20_has_78_sms():
    # notes table: "78 SMs of GH100"
    assert load_chip("h20").cores.count == 78


@pytest.mark.parametrize("name", sorted(NVLINK_TOTAL))
def test_nvlink_total_matches_datasheet(name):
    assert load_chip(name).links.total_bytes_per_s == pytest.approx(NVLINK_TOTAL[name],
                                                                      rel=1e-9)


def test_h200_compute_is_h100_compute():
    h100, h200 = load_chip("h100-sxm"), load_chip("h200-sxm")
    for dtype in DTYPES:
        assert h200.peak_flops(dtype) == h100.peak_flops(dtype)


def _tpp(name: str) -> float:
    """ECCN 3A090 TPP = 2 x MacTOPS x bit length, dense, max over data types.

    MacTOPS is 10^12 MAC/s: cores x sum over matrix units (count x MACs/cycle) x clock.
    """
    chip = load_chip(name)
    best = 0.0
    for dtype in DTYPES:
        macs = chip.cores.count * sum(mu.count * mu.macs_per_cycle.get(dtype, 0)
                                      for mu in chip.cores.matrix_units)
        best = max(best, 2 * macs * chip.clock_hz / 1e12 * BITS[dtype])
    return best


def test_forge_i1_tpp_below_the_3a090_floor():
    # 32 cores x 2048 int8 MAC/cycle x 1.5 GHz = 98.304e12 MAC/s -> 2 x 98.304 x 8 =
    # 1572.864 (bf16: 32 x 1024 x 1.5 GHz = 49.152 TMAC/s -> 2 x 49.152 x 16, the same)
    tpp = _tpp("forge-i1")
    assert tpp == pytest.approx(1572.864, rel=1e-9)
    # TPP < 1600: no 3A090 tier whatever the PD (88 FR 73458; tests/legal/test_tier.py)
    assert tpp < 1600


def test_forge_t1_tpp_below_the_3a090_floor():
    # 4 cores x 1 array x 8192 bf16 MAC x 1.5 GHz = 49.152 TMAC/s -> 2 x 49.152 x 16
    # = 1572.864 (int8/fp8 at 2x the MACs and half the bits give the same)
    tpp = _tpp("forge-t1")
    assert tpp == pytest.approx(1572.864, rel=1e-9)
    assert tpp < 1600


def test_h20_tpp_and_pd_match_published():
    # notes: "The H20's TPP is 2,368 and its PD about 2.9" (die 814 mm2)
    tpp = _tpp("h20")
    assert tpp == pytest.approx(2368, rel=0.01)
    assert tpp / load_chip("h20").die_area_mm2 == pytest.approx(2.9, abs=0.05)


def test_load_chip_by_path(tmp_path):
    copy = tmp_path / "my-a100.yaml"
    shutil.copy(catalog_path("a100-sxm"), copy)
    by_str = load_chip(str(copy))
    by_path = load_chip(copy)
    by_name = load_chip("a100-sxm")
    assert by_str == by_name
    assert by_path == by_name
    assert hash(by_path) == hash(by_name)
    assert by_path.clock_hz == pytest.approx(1.41e9, rel=1e-12)  # whitepaper: 1410 MHz boost


def test_edited_spec_is_a_different_chip(tmp_path):
    text = catalog_path("a100-sxm").read_text()
    edited = text.replace("{value: 400 W,", "{value: 300 W,")
    assert edited != text
    path = tmp_path / "a100-300w.yaml"
    path.write_text(edited)
    chip = load_chip(path)
    assert chip.tdp_w == 300.0
    assert chip != load_chip("a100-sxm")


def test_sources_are_kept_by_field_path():
    # the A100 datasheet line quoted in the catalog for TDP and for the 2,039 GB/s figure
    chip = load_chip("a100-sxm")
    assert chip.sources["tdp"] == "source: NVIDIA A100 datasheet (2021): Max TDP 400 W (SXM)"
    assert chip.sources["memory.bandwidth"] == (
        "source: A100 80GB SXM datasheet: 2,039 GB/s")
    assert chip.sources["cores.matrix_units[0].macs_per_cycle.bf16"].startswith(
        "source: A100 whitepaper Table 3")


def test_catalog_path_points_into_the_package():
    path = catalog_path("h100-sxm")
    assert path.name == "h100-sxm.yaml"
    assert Path(path).is_file()
