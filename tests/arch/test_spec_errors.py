"""Bad chip specs fail with one exact line: file path, field path, value, and what was
expected. Each case mutates the text of the shipped a100-sxm.yaml."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from chipforge.arch import load_chip
from chipforge.arch._loader import catalog_path
from chipforge.errors import ChipforgeError, SpecError
from clitools import chipforge_exe

BASE = catalog_path("a100-sxm").read_text()
DTYPE_LIST = "fp32, tf32, bf16, fp16, fp8_e4m3, fp8_e5m2, int8"


def _mutate(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"mutation anchor {old!r} must occur exactly once"
    return BASE.replace(old, new)


def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_chip(path)
    return str(info.value)


# (id, old text, new text, message after "<path>: ")
CASES = [
    ("yaml-syntax-mapping",
     "\nkind: gpu\n", "\nkind: gpu: x\n",
     # line 5 is `kind: gpu: x`; column 10 is the second ':'
     "YAML syntax error at line 5, column 10: mapping values are not allowed here"),
    ("yaml-syntax-unclosed-flow",
     "vendor: NVIDIA", "vendor: [NVIDIA",
     # the '[' opens on line 4; the parser notices at the ':' of line 5 (`kind: gpu`)
     "YAML syntax error at line 5, column 5: expected ',' or ']', but got ':'"),
    ("missing-field",
     'tdp: {value: 400 W, source: "NVIDIA A100 datasheet (2021): Max TDP 400 W (SXM)"}\n', "",
     "tdp: missing required field; expected a power with a unit, like '400 W'"),
    ("negative-size",
     "size: {value: 164 KiB,", "size: {value: -164 KiB,",
     "cores.local_sram.size: expected a positive size (got '-164 KiB')"),
    ("zero-count",
     "count: {value: 108,", "count: {value: 0,",
     "cores.count: got 0; expected a positive integer"),
    ("unknown-dtype-key",
     "        bf16: {value: 256,", "        fp9: 256\n        bf16: {value: 256,",
     # pydantic also reports the emptied matrix_units list: a follow-on, not counted
     f"cores.matrix_units[0].macs_per_cycle.fp9: unknown dtype 'fp9'; expected one of "
     f"{DTYPE_LIST}"),
    ("unknown-vector-dtype",
     "dtypes: [fp32, fp16, bf16]", "dtypes: [fp32, fp17]",
     f"cores.vector_unit.dtypes[1]: unknown dtype 'fp17'; expected one of {DTYPE_LIST}"),
    ("unknown-unit",
     "{value: 2039 GB/s,", "{value: 2039 GBps,",
     "memory.bandwidth: unknown bandwidth unit 'GBps'; expected one of B/s, KB/s, MB/s, "
     "GB/s, TB/s, GiB/s, Gbps, Tbps (got '2039 GBps')"),
    ("wrong-type",
     "count: {value: 108,", "count: {value: many,",
     "cores.count: got 'many'; input should be a valid integer"),
    ("float-count",
     "count: {value: 108,", "count: {value: 108.0,",
     "cores.count: got 108.0; input should be a valid integer"),
    ("bare-number-clock",
     "{value: 1.41 GHz,", "{value: 1410000000,",
     "clock: expected a frequency with a unit, like '1.41 GHz' (got 1410000000)"),
    ("unwrapped-bare-number-clock",
     'clock: {value: 1.41 GHz, source: "A100 whitepaper Table 1: GPU Boost Clock 1410 MHz"}',
     "clock: 1.41",
     "clock: expected a frequency with a unit, like '1.41 GHz' (got 1.41)"),
    ("unknown-memory-kind",
     "kind: HBM2e", "kind: HBM4",
     "memory.kind: got 'HBM4'; expected one of 'HBM2e', 'HBM3', 'HBM3e', 'LPDDR5', "
     "'LPDDR5X', 'GDDR6', 'GDDR7' or 'DDR5'"),
    ("unknown-process-node",
     "{value: N7,", "{value: N8,",
     "process_node: got 'N8'; expected one of 'N16', 'N12', 'N7', 'N6', 'N5', '4N', 'N4', "
     "'4NP', 'N3', 'N2' or 'SMIC-N+2'"),
    ("unknown-field",
     "vendor: NVIDIA\n", "vendor: NVIDIA\nvendr: NVIDIA\n",
     "vendr: unknown field (value 'NVIDIA')"),
]


@pytest.mark.parametrize(("old", "new", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_spec_message(tmp_path, old, new, message):
    path = _write(tmp_path, _mutate(old, new))
    assert _error(path) == f"{path}: {message}"


def test_spec_error_is_a_chipforge_error(tmp_path):
    path = _write(tmp_path, _mutate("count: {value: 108,", "count: {value: 0,"))
    with pytest.raises(ChipforgeError):
        load_chip(path)


def test_unknown_chip_name():
    with pytest.raises(SpecError) as info:
        load_chip("h300")
    assert str(info.value) == (
        "unknown chip 'h300'; expected a spec file path or one of: a100-sxm, ascend-910b, "
        "ascend-910c, b200, b300, forge-i1, forge-t1, gb200, h100-sxm, h20, h200-sxm, h800-sxm, "
        "l40s, rtx-pro-6000-server, tpu-v5e")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert _error(path) == f"{path}: cannot read spec file: No such file or directory"


def test_top_level_not_a_mapping(tmp_path):
    path = _write(tmp_path, "- a\n- b\n")
    assert _error(path) == f"{path}: expected a mapping of spec fields at the top level, got list"


def test_empty_file(tmp_path):
    path = _write(tmp_path, "")
    assert _error(path) == (
        f"{path}: the file is empty; expected a mapping of spec fields")



def test_cli_bad_spec_prints_one_error_line(tmp_path):
    path = _write(tmp_path, _mutate("count: {value: 108,", "count: {value: many,"))
    proc = subprocess.run([chipforge_exe(), "chip", "show", str(path)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr == (
        f"error: {path}: cores.count: got 'many'; input should be a valid integer\n")


def test_in_switch_reduction_must_be_a_bool(tmp_path):
    """A yes/no fact is a YAML bool; a string or number is refused, naming the field."""
    anchor = '  bandwidth: {value: 50 GB/s, source: "A100 whitepaper: 50 GB/s per link'
    text = BASE.replace(anchor, '  in_switch_reduction: "yes"\n' + anchor)
    assert text != BASE
    message = _error(_write(tmp_path, text))
    assert "links.in_switch_reduction" in message and "'yes'" in message


def test_in_switch_reduction_is_read_from_the_catalog():
    """Oracle: the H100 whitepaper's NVLink SHARP in the third-generation NVSwitch; the
    A100's NVSwitch (gen 2) has none."""
    assert load_chip("h100-sxm").links.in_switch_reduction is True
    assert load_chip("a100-sxm").links.in_switch_reduction is False


def test_async_bulk_copy_must_be_a_bool(tmp_path):
    """The copy-engine fact is a YAML bool; a string is refused, naming the field."""
    text = _mutate("  async_bulk_copy: {value: false,", '  async_bulk_copy: {value: "no",')
    message = _error(_write(tmp_path, text))
    assert "cores.async_bulk_copy" in message and "'no'" in message


@pytest.mark.parametrize(("bad", "shown"), [("true", "got True"), ("-3", "got -3"),
                                           ('"36"', "got '36'"), ("0", "got 0")])
def test_core_read_rate_must_be_a_positive_number(tmp_path, bad, shown):
    """The per-core L2 read rate is a plain positive number of bytes per cycle: a bool, a
    string, zero or a negative value is refused, naming the field and the value."""
    text = _mutate("  core_read_bytes_per_cycle: {value: 35.7,",
                   f"  core_read_bytes_per_cycle: {{value: {bad},")
    message = _error(_write(tmp_path, text))
    assert f"shared_buffer.core_read_bytes_per_cycle: {shown};" in message


def test_mma_operands_names_one_of_the_two_kinds(tmp_path):
    text = _mutate("mma_operands: {value: warp_registers,", "mma_operands: {value: registers,")
    message = _error(_write(tmp_path, text))
    assert "mma_operands" in message and "'registers'" in message
    assert "'warp_registers'" in message and "'shared_memory'" in message


def test_gpu_generations_are_read_from_the_catalog():
    """Oracle: the whitepapers. Ampere and Ada run warp-level mma.sync and copy with
    cp.async; Hopper's wgmma reads shared memory and its TMA copies tiles; GB202 (sm_120)
    has TMA but mma.sync."""
    a100, h100 = load_chip("a100-sxm"), load_chip("h100-sxm")
    assert (a100.cores.async_bulk_copy, a100.cores.matrix_units[0].mma_operands) == (
        False, "warp_registers")
    assert (h100.cores.async_bulk_copy, h100.cores.matrix_units[0].mma_operands) == (
        True, "shared_memory")
    assert load_chip("l40s").cores.async_bulk_copy is False
    rtx = load_chip("rtx-pro-6000-server")
    assert (rtx.cores.async_bulk_copy, rtx.cores.matrix_units[0].mma_operands) == (
        True, "warp_registers")
