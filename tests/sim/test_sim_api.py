"""simulate()'s API: inputs and outputs, user errors, saved programs, an end-to-end GEMM."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from simkit import CHIP, fence, ins, program

from chipforge.arch import load_chip
from chipforge.errors import ChipforgeError
from chipforge.isa import AsmError, Dtype, Opcode, Program
from chipforge.numerics import NP_DTYPE, cast
from chipforge.sim import SimError, simulate

ROOT = Path(__file__).resolve().parents[2]


def copy_program(name: str = "bf16", shape=(4, 8)) -> Program:
    n = int(np.prod(shape))
    dt = Dtype[name.upper()]
    code = fence(ins(Opcode.DMA_LOAD, 0, 0, 1, n, n, n, dtype=dt),
                 ins(Opcode.DMA_STORE, 4096, 0, 1, n, n, n, dtype=dt))
    return program([code], {"x": (0, shape, name), "y": (4096, shape, name)}, ("y",))


def test_float_inputs_are_rounded_once_from_float32_and_outputs_come_back_typed():
    x = np.random.default_rng(0).standard_normal((4, 8))  # float64: rounded to f32 first
    res = simulate(copy_program(), CHIP, {"x": x})
    y = res.outputs["y"]
    assert y.dtype == NP_DTYPE["bf16"] and y.shape == (4, 8)
    assert np.array_equal(y.view(np.uint16), cast(x.astype(np.float32), "bf16").view(np.uint16))


def test_integer_inputs_are_range_checked_not_wrapped():
    prog = copy_program("int8")
    ok = simulate(prog, CHIP, {"x": np.arange(32).reshape(4, 8)})
    assert ok.outputs["y"].ravel().tolist() == list(range(32))
    with pytest.raises(SimError, match=r"input 'x' has values in \[300, 300\], expected int8's "
                                       r"range \[-128, 127\]"):
        simulate(prog, CHIP, {"x": np.full((4, 8), 300)})
    with pytest.raises(SimError, match="expected integers for int8"):
        simulate(prog, CHIP, {"x": np.zeros((4, 8))})


def test_input_errors():
    prog = copy_program()
    with pytest.raises(SimError, match=r"unknown input 'z'; the program's inputs are: x"):
        simulate(prog, CHIP, {"z": np.zeros(3)})
    with pytest.raises(SimError, match=r"input 'x' has shape \(8, 4\), expected \(4, 8\)"):
        simulate(prog, CHIP, {"x": np.zeros((8, 4), np.float32)})
    assert issubclass(SimError, ChipforgeError)


def test_program_errors():
    too_many = program([[ins(Opcode.HALT)]] * 33)
    with pytest.raises(SimError, match=r"33 core streams, expected <= 32 \(the cores of "
                                       r"forge-t1-seed\)"):
        simulate(too_many, CHIP)
    bad = program([[ins(Opcode.HALT)]], {"x": (1 << 20, (4,), "fp32")}, ("x",))
    with pytest.raises(SimError, match="tensor 'x' at 1048576 .* ends past"):
        simulate(bad, CHIP)
    # a bad ALU op cannot even be built: the ISA rejects it at construction
    with pytest.raises(AsmError, match=r"V_UN.alu must be a UnOp \(COPY=0"):
        ins(Opcode.V_UN, 0, 0, 1, 1, 1, 1, alu=77)


def test_saved_program_and_chip_spec_object(tmp_path):
    prog = copy_program("fp32")
    prog.init = {0: np.arange(32, dtype=np.float32).tobytes()}
    loaded = Program.load(prog.save(tmp_path / "copy.cfp"))
    res = simulate(loaded, load_chip(CHIP))  # init segment, no inputs
    assert res.outputs["y"].ravel().tolist() == list(range(32))


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_sim", ROOT / "bench" / "bench_sim.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_tiled_gemm_programs_from_the_bench_are_exact(dataflow):
    bench = load_bench()
    rng = np.random.default_rng(2)
    a = cast(rng.standard_normal((256, 256)).astype(np.float32), "bf16")
    b = cast(rng.standard_normal((256, 256)).astype(np.float32), "bf16")
    res = simulate(bench.PROGRAMS[dataflow](256, chip=CHIP), CHIP, {"A": a, "B": b})
    # oracle: per MM instruction's k (ws: the array's 128 rows, os: all of k) the exact
    # sum rounded once to fp32, added in fp32; float64 products, and Fractions wherever
    # float64 disagrees with the simulator
    kt = 128 if dataflow == "ws" else 256
    bad, _ = bench._check_float(res.outputs["C"], a, b, kt)
    assert bad == 0
    assert res.utilization[(0, "MXU")] > 0.3


def test_bench_exactness_check_catches_a_wrong_output():
    bench = load_bench()
    rng = np.random.default_rng(3)
    a = cast(rng.standard_normal((8, 256)).astype(np.float32), "bf16")
    b = cast(rng.standard_normal((256, 8)).astype(np.float32), "bf16")
    right = cast((a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32), "bf16")
    assert bench._check_float(right, a, b, 256)[0] == 0
    wrong = right.copy()
    wrong.view(np.uint16)[3, 5] += 1  # one ulp
    assert bench._check_float(wrong, a, b, 256) == (1, 1)


def test_mixed_bench_program_runs_with_semaphores():
    bench = load_bench()
    res = simulate(bench.mixed_program(600, cores=2), CHIP)
    assert res.instructions == 602
    assert {label for label, _ in res.top_ops(10)} == {"load", "mm", "scale", "bias", "store"}
