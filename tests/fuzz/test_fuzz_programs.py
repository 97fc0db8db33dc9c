"""Fuzzed .cfp programs: byte-level damage to a valid file and random program.json
headers. Each loads into a program whose tensors and DRAM segments lie inside its declared
DRAM, or fails with one ProgramError line, in bounded time and memory."""

from __future__ import annotations

import io
import json
import random
import zipfile

import pytest
from fuzzkit import MODULE_RSS_GROWTH_BYTES, check_case, max_rss_bytes, mutate_bytes, random_tree

from chipforge.isa import Program, TensorPlacement, assemble
from chipforge.numerics import NP_DTYPE


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    before = max_rss_bytes()
    yield
    assert max_rss_bytes() - before < MODULE_RSS_GROWTH_BYTES


@pytest.fixture(scope="module")
def valid_cfp(tmp_path_factory) -> bytes:
    prog = Program("forge-i1", [[assemble("HALT")], [assemble("HALT")]], 8192,
                   {"x": TensorPlacement("x", 0, (4, 8), "bf16"),
                    "y": TensorPlacement("y", 4096, (8,), "fp32")}, ["x"], ["y"],
                   {1024: bytes(range(200))}, {"note": "fuzz"})
    path = prog.save(tmp_path_factory.mktemp("cfp") / "p.cfp")
    return path.read_bytes()


def _sound(prog: Program) -> None:
    for t in prog.tensors.values():
        size = NP_DTYPE[t.dtype].itemsize
        for d in t.shape:
            size *= d
        assert 0 <= t.addr and t.addr + size <= prog.dram_bytes
    for addr, data in prog.init.items():
        assert 0 <= addr and addr + len(data) <= prog.dram_bytes
    assert set(prog.inputs) | set(prog.outputs) <= set(prog.tensors)


@pytest.mark.parametrize("seed", range(150))
def test_damaged_files(tmp_path, valid_cfp, seed):
    path = tmp_path / "p.cfp"
    path.write_bytes(mutate_bytes(valid_cfp, random.Random(seed), edits=1 + seed % 4))
    status, result = check_case(lambda: Program.load(path))
    if status == "ok":
        _sound(result)
    else:
        assert result.startswith(f"{path}: ")


@pytest.mark.parametrize("seed", range(60))
def test_random_headers(tmp_path, valid_cfp, seed):
    rng = random.Random(5000 + seed)
    header = json.loads(zipfile.ZipFile(io.BytesIO(valid_cfp)).read("program.json"))
    key = rng.choice(list(header) + ["zz"])
    header[key] = random_tree(rng)
    path = tmp_path / "p.cfp"
    with zipfile.ZipFile(io.BytesIO(valid_cfp)) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "program.json":
                data = json.dumps(header).encode()
            dst.writestr(info, data)
    status, result = check_case(lambda: Program.load(path))
    if status == "ok":
        _sound(result)
