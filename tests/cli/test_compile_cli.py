"""``chipforge compile | run | disasm`` through the installed console script: a small model
factory file compiled in bf16, int8 and fp8, run on the simulator with a Perfetto trace,
disassembled and read back; outputs checked against PyTorch; every user error one line on
stderr with exit status 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chipforge.isa import Program, assemble, encode  # noqa: E402
from chipforge.sim import simulate  # noqa: E402
from clitools import chipforge_exe  # noqa: E402

FACTORY = '''\
import torch


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.fc2 = torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class Cumulative(torch.nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x).real * 2.0


class Branchy(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


def make():
    torch.manual_seed(0)
    model = MLP()
    calibration = [(torch.randn(4, 16),) for _ in range(4)]
    return model.eval(), (torch.randn(4, 16),), calibration


def only_model():
    return MLP()


def list_inputs():
    return MLP(), [torch.randn(4, 16)]


def cumulative():
    return Cumulative(), (torch.randn(4, 16),)


def branchy():
    return Branchy(), (torch.randn(4, 16),)


def raises():
    return 1 / 0
'''
MODELS = "models.py"
TOLERANCE = {"none": 2e-2, "int8": 5e-2, "fp8": 1e-1}  # relative L2 error vs PyTorch fp32



def chipforge(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chipforge_exe(), *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("compile_cli")
    (folder / MODELS).write_text(FACTORY)
    (folder / "data.txt").write_text("not a program\n")
    return folder


@pytest.fixture(scope="module")
def compiled(work) -> dict[str, Path]:
    """quant -> program file, each compiled by the console script."""
    out = {}
    for quant in ("none", "int8", "fp8"):
        path = work / f"prog-{quant}.cfp"
        proc = chipforge(work, "compile", f"{MODELS}:make", "--chip", "forge-i1",
                         *(["--quant", quant] if quant != "none" else []), "-o", path.name)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == "", proc.stderr  # no library warnings leak
        assert re.fullmatch(rf"{path.name}: \d+ kernels, \d+ instructions on \d+ cores of "
                            rf"forge-i1\n", proc.stdout), proc.stdout
        assert path.is_file()
        out[quant] = path
    return out


def _torch_model():
    namespace: dict = {}
    exec(compile(FACTORY, MODELS, "exec"), namespace)
    return namespace["make"]()[0]


@pytest.mark.slow
@pytest.mark.parametrize("quant", ["none", "int8", "fp8"])
def test_compiled_program_matches_pytorch(compiled, quant):
    program = Program.load(compiled[quant])
    assert program.chip == "forge-i1" and program.inputs == ["x"] and len(program.outputs) == 1
    x = program.example_inputs["x"]
    assert x.shape == (4, 16)
    result = simulate(program, program.chip, program.example_inputs)
    y = np.asarray(result.outputs[program.outputs[0]], np.float32)
    with torch.no_grad():
        ref = _torch_model()(torch.from_numpy(x)).numpy()
    assert y.shape == ref.shape == (4, 8)
    err = np.linalg.norm(y - ref) / np.linalg.norm(ref)
    assert err <= TOLERANCE[quant], f"{quant}: relative error {err:.3g}"
    ops = [k["op"] for k in program.meta["kernels"]]
    assert ops.count("quantize") == (0 if quant == "none" else 2)  # one per Linear


@pytest.mark.slow
@pytest.mark.parametrize("quant", ["none", "int8", "fp8"])
def test_run_prints_cycles_utilization_and_top_ops_and_writes_a_trace(work, compiled, quant):
    trace = work / f"trace-{quant}.json"
    proc = chipforge(work, "run", compiled[quant].name, "--trace", trace.name)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    program = Program.load(compiled[quant])
    expected = simulate(program, program.chip, program.example_inputs)
    head = re.search(r"on forge-i1: ([\d,]+) cycles, ([\d.,]+) us, ([\d,]+) instructions", out)
    assert head, out
    assert int(head[1].replace(",", "")) == expected.cycles
    assert float(head[2].replace(",", "")) == pytest.approx(expected.seconds * 1e6, abs=0.01)
    assert int(head[3].replace(",", "")) == expected.instructions
    assert "utilization per unit (mean over cores)" in out
    for unit in ("DMA", "MXU", "VEC"):
        row = re.search(rf"│ {unit}\s+│\s+([\d,]+) │\s+([\d.]+)% │", out)
        assert row, f"no {unit} row in\n{out}"
        busy = sum(v for (_, u), v in expected.busy.items() if u == unit)
        assert int(row[1].replace(",", "")) == busy
    top = out[out.index("top ops by unit-cycles"):]
    rows = re.findall(r"│ (\S+)\s+│\s+([\d,]+) │", top)
    kernels = {k["label"] for k in program.meta["kernels"]}
    assert rows and {label for label, _ in rows} <= kernels  # op labels survive the .cfp
    cycles = [int(c.replace(",", "")) for _, c in rows]
    assert cycles == sorted(cycles, reverse=True)
    assert sum(cycles) == sum(expected.op_cycles.values())  # every op listed (< 10 here)
    assert f"trace written to {trace.name}" in out

    data = json.loads(trace.read_text())
    events = data["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    assert spans and all({"ts", "dur", "pid", "tid", "name"} <= e.keys() for e in spans)
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in spans)
    processes = {e["pid"]: e["args"]["name"] for e in events
                 if e["ph"] == "M" and e["name"] == "process_name"}
    assert {e["pid"] for e in spans} <= processes.keys()
    assert all(name == f"core {pid}" for pid, name in processes.items())
    threads = {e["args"]["name"] for e in events
               if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"DMA", "MXU", "VEC"} <= threads


@pytest.mark.slow
def test_disasm_lines_assemble_back_to_the_program(work, compiled):
    proc = chipforge(work, "disasm", compiled["none"].name)
    assert proc.returncode == 0, proc.stderr
    program = Program.load(compiled["none"])
    lines = proc.stdout.splitlines()
    headers = [line for line in lines if line.startswith(";")]
    assert headers == [f"; core {c}: {len(instrs)} instructions"
                       for c, instrs in enumerate(program.cores)]
    core = -1
    seen = 0
    for line in lines:
        if line.startswith(";"):
            core += 1
            pc_expected = 0
            continue
        pc_text, text = line[:6], line[8:]
        assert line[6:8] == "  " and int(pc_text) == pc_expected, line
        instr = assemble(text)
        assert instr == program.cores[core][pc_expected], line
        assert encode(instr) == encode(program.cores[core][pc_expected])
        assert ";" in text and instr.comment  # each line carries its op label
        pc_expected += 1
        seen += 1
    assert seen == program.instruction_count


# ---- errors: one line on stderr, exit status 2, no traceback -------------------------------


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


CALLABLES = "Branchy, Cumulative, MLP, branchy, cumulative, list_inputs, make, only_model, raises"
FORM = ("the factory must return (module, example_inputs[, calibration]): an nn.Module, a "
        "tuple of tensors and optionally a list of such tuples")


@pytest.mark.parametrize("args, expected", [
    (("compile", "nofile.py:make"), "error: nofile.py: no such file (from 'nofile.py:make')"),
    (("compile", MODELS), f"error: expected PATH.py:FACTORY, got '{MODELS}'"),
    (("compile", f"{MODELS}:missing"),
     f"error: {MODELS}: has no function 'missing'; callables defined there: {CALLABLES}"),
    (("compile", f"{MODELS}:only_model"), f"error: {MODELS}:only_model: {FORM}; got MLP"),
    (("compile", f"{MODELS}:list_inputs"),
     f"error: {MODELS}:list_inputs: {FORM}; got (MLP, [Tensor]), whose example inputs are "
     f"not a tuple of tensors"),
    (("compile", f"{MODELS}:raises"),
     f"error: {MODELS}:{FACTORY.splitlines().index('    return 1 / 0') + 1}: raises() raised "
     f"ZeroDivisionError: division by zero"),
    (("compile", f"{MODELS}:make", "--quant", "int4"),
     "error: --quant 'int4'; expected none, int8 or fp8"),
    (("compile", f"{MODELS}:make", "--dtype", "int8"),
     "error: --dtype 'int8'; expected one of fp32, bf16, fp16"),
    (("compile", f"{MODELS}:make", "-o", "no/such/folder/p.cfp"),
     "error: no/such/folder/p.cfp: cannot write the program: No such file or directory"),
    (("run", "data.txt"),
     "error: data.txt: not a chipforge program (.cfp): File is not a zip file"),
    (("run", "missing.cfp"),
     "error: missing.cfp: no such file; expected a .cfp program (chipforge compile ... -o "
     "missing.cfp)"),
    (("disasm", "data.txt"),
     "error: data.txt: not a chipforge program (.cfp): File is not a zip file"),
])
def test_user_errors_are_one_line(work, args, expected):
    assert one_error_line(chipforge(work, *args)) == expected


@pytest.mark.slow
def test_unsupported_op_names_the_op_the_source_line_and_what_to_do(work):
    line = one_error_line(chipforge(work, "compile", f"{MODELS}:cumulative"))
    lineno = FACTORY.splitlines().index("        return torch.fft.rfft(x).real * 2.0") + 1
    assert "unsupported PyTorch op aten._fft_r2c" in line
    assert f"{work / MODELS}:{lineno} `return torch.fft.rfft(x).real * 2.0`" in line
    assert line.startswith(f"error: {MODELS}:cumulative: unsupported PyTorch op ")
    assert "`chipforge ops --missing` lists the Core ATen ops that are not supported" in line


@pytest.mark.slow
def test_export_failure_is_one_line(work):
    line = one_error_line(chipforge(work, "compile", f"{MODELS}:branchy"))
    assert line.startswith(f"error: {MODELS}:branchy: torch.export could not capture the "
                           f"model: ")


@pytest.mark.slow
def test_run_input_and_trace_errors(work, compiled):
    name = compiled["none"].name
    assert one_error_line(chipforge(work, "run", name, "--trace", "no/dir/t.json")) == \
        "error: no/dir/t.json: cannot write the trace: no folder no/dir"
    line = one_error_line(chipforge(work, "run", name, "--inputs", "data.txt"))
    assert line.startswith("error: data.txt: cannot read inputs (expected an .npz of named "
                           "arrays): ")
    np.savez(work / "wrong.npz", z=np.zeros(3, np.float32))
    assert one_error_line(chipforge(work, "run", name, "--inputs", "wrong.npz")) == \
        "error: unknown input 'z'; the program's inputs are: x"
    x = np.ones((4, 16), np.float32)
    np.savez(work / "ones.npz", x=x)
    proc = chipforge(work, "run", name, "--inputs", "ones.npz")
    assert proc.returncode == 0, proc.stderr
