"""The CLI's entry points under hostile arguments and files, run in this process through
the console entry point (so an escaping exception is the traceback a user would see):
exit 0/1 with output, or exit 2 with one ``error:`` line. Two cases run as subprocesses
under an address-space limit, to show tiny hostile files stay small in memory."""

from __future__ import annotations

import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from fuzzkit import assert_clean_cli, mutate_bytes, mutate_text, run_cli
from test_fuzz_ops import _random_op

from chipforge.arch._loader import catalog_path
from chipforge.isa import Program, TensorPlacement, assemble
from clitools import chipforge_exe

sys.path.insert(0, str(Path(__file__).parents[1] / "dse"))
from dse_fixtures import TINY_SPACE  # noqa: E402


@pytest.mark.parametrize("seed", range(20))
def test_chip_show_mutated(tmp_path, seed):
    path = tmp_path / "c.yaml"
    path.write_text(mutate_text(catalog_path("forge-i1").read_text(), random.Random(seed)),
                    errors="surrogatepass")
    code, out, err = run_cli(["chip", "show", str(path)])
    assert_clean_cli(code, err)


@pytest.mark.parametrize("seed", range(20))
def test_estimate_random_ops(seed):
    code, out, err = run_cli(["estimate", "--op", _random_op(random.Random(seed)),
                              "--chip", "forge-t1"])
    assert_clean_cli(code, err)


@pytest.fixture(scope="module")
def cfp_bytes(tmp_path_factory) -> bytes:
    prog = Program("forge-i1", [[assemble("HALT")]], 4096,
                   {"x": TensorPlacement("x", 0, (4, 8), "bf16")}, ["x"], [],
                   {512: bytes(range(64))})
    return prog.save(tmp_path_factory.mktemp("cli") / "p.cfp").read_bytes()


@pytest.mark.parametrize("seed", range(20))
def test_disasm_and_run_damaged(tmp_path, cfp_bytes, seed):
    path = tmp_path / "p.cfp"
    path.write_bytes(mutate_bytes(cfp_bytes, random.Random(seed), edits=1 + seed % 3))
    for command in ("disasm", "run"):
        code, out, err = run_cli([command, str(path)])
        assert_clean_cli(code, err)


def test_hostile_options(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(TINY_SPACE)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (["dse", "run", str(space), "--out", str(tmp_path / "r"), "--seed", "-1"],
         "error: --seed: got -1; expected an integer from 0 to 4294967295\n"),
        (["dse", "run", str(space), "--out", str(a_file), "--trials", "1", "--workers", "1"],
         f"error: {a_file}: cannot use it as the run folder: File exists; expected a folder "
         f"or a new path\n"),
        (["dse", "run", str(space), "--out", str(tmp_path / "r"), "--trials", "0"],
         "error: --trials: got 0; expected a positive number of points\n"),
        (["dse", "pareto", str(a_file)],
         f"error: {a_file}: no results.sqlite; expected the --out folder of a chipforge dse "
         f"run\n"),
    ]
    for args, expected in cases:
        code, out, err = run_cli(args)
        assert (code, err) == (2, expected), args


def test_rtl_hostile_options(tmp_path):
    pytest.importorskip("amaranth")
    code, _, err = run_cli(["rtl", "export", "--rows", "0", "--out", str(tmp_path)])
    assert (code, err) == (2, "error: --rows must be an integer in 2..256, got 0\n")
    code, _, err = run_cli(["rtl", "verify", "--seed", "-1", "--count", "1"])
    assert (code, err) == (2, "error: --seed must be >= 0, got -1\n")
    code, _, err = run_cli(["rtl", "verify", "--vcd", str(tmp_path), "--count", "1"])
    assert (code, err) == (2, f"error: --vcd {tmp_path}: is a folder; expected a file path "
                              f"for the waveforms, like {tmp_path / 'verify.vcd'}\n")


def _limit_memory() -> None:
    two_gib = 2 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (two_gib, two_gib))


@pytest.mark.parametrize("kind", ["laughs", "bomb"])
def test_tiny_hostile_files_under_a_memory_limit(tmp_path, kind):
    """The ~350-byte billion laughs (was 1.5 GB, > 60 s) and a ~200 KB zip bomb (a 26 KB
    one reached 4.2 GB) under a 2 GiB address-space limit and a 60 s timeout."""
    if kind == "laughs":
        from arch_laughs import LAUGHS
        path = tmp_path / "laughs.yaml"
        path.write_text(LAUGHS)
        args = ["chip", "show", str(path)]
    else:
        import json
        import zipfile
        path = tmp_path / "bomb.cfp"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("program.json", json.dumps(
                {"chip": "forge-i1", "dram_bytes": 4096, "inputs": [], "outputs": [],
                 "cores": 1, "tensors": {}}))
            zf.writestr("core0.bin", b"")
            zf.writestr("dram.npz", b"\0" * (200 * 2**20))  # ~200 KB deflated
        args = ["disasm", str(path)]
    proc = subprocess.run([chipforge_exe(), *args], capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_memory)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {path}: ") and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("seed", range(10))
def test_estimate_on_a_mutated_spec(tmp_path, seed):
    path = tmp_path / "chip.yaml"
    path.write_text(mutate_text(catalog_path("forge-t1").read_text(), random.Random(7 * seed),
                                edits=1), errors="surrogatepass")
    code, out, err = run_cli(["estimate", "--op", "matmul m=512 n=512 k=512",
                              "--chip", str(path)])
    assert_clean_cli(code, err)


@pytest.mark.parametrize("seed", range(10))
def test_run_with_damaged_inputs(tmp_path, cfp_bytes, seed):
    import io

    import numpy as np

    program = tmp_path / "p.cfp"
    program.write_bytes(cfp_bytes)
    buf = io.BytesIO()
    np.savez(buf, x=np.ones((4, 8), np.float32))
    inputs = tmp_path / "in.npz"
    inputs.write_bytes(mutate_bytes(buf.getvalue(), random.Random(seed)))
    code, out, err = run_cli(["run", str(program), "--inputs", str(inputs)])
    assert_clean_cli(code, err)
