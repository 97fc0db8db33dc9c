"""``chipforge run prog.cfp --check`` (issue 11, point 2): the simulator's outputs against
the reference outputs ``chipforge compile`` records. The oracle is the model run by PyTorch
in this test, independently of what the program recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chipforge.isa import Program  # noqa: E402
from chipforge.sim import simulate  # noqa: E402
from clitools import chipforge_exe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([chipforge_exe(), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("check") / "prog.cfp"
    done = _cli("compile", ROOT / "examples" / "model.py:make", "--chip", "forge-i1", "-o", out,
                cwd=out.parent)
    assert done.returncode == 0, done.stderr
    return out


def _model_outputs() -> np.ndarray:
    sys.path.insert(0, str(ROOT))
    try:
        from examples.model import make
    finally:
        sys.path.remove(str(ROOT))
    model, inputs, _ = make()
    with torch.no_grad():
        return model(*inputs).numpy().astype(np.float64)


def test_check_reports_the_error_against_pytorch(program):
    done = _cli("run", program, "--check", "--json", cwd=program.parent)
    assert done.returncode == 0, done.stderr
    checks = json.loads(done.stdout)["check"]
    assert [c["reference"] for c in checks] == ["pytorch"] and checks[0]["ok"]
    # the reported error is the simulator's outputs against PyTorch's, recomputed here
    prog = Program.load(program)
    got = simulate(prog, prog.chip, prog.example_inputs).outputs[prog.outputs[0]]
    want = _model_outputs()
    rel = np.linalg.norm(np.asarray(got, np.float64).reshape(want.shape) - want) / \
        np.linalg.norm(want)
    assert checks[0]["rel_error"] == pytest.approx(rel, rel=1e-4)
    assert 0 < rel < 0.05  # bf16 rounding: not zero, well under the tolerance
    table = _cli("run", program, "--check", cwd=program.parent)
    assert table.returncode == 0 and "ok" in table.stdout and "pytorch" in table.stdout


def _edited(program: Path, tmp_path: Path, edit) -> Path:
    prog = Program.load(program)
    edit(prog.meta["reference"])
    return prog.save(tmp_path / "edited.cfp")


def test_check_fails_when_the_outputs_differ(program, tmp_path):
    from chipforge.compiler.runtime._check import _decode, _encode

    def doubled(ref):
        for name, entry in ref["pytorch"].items():
            ref["pytorch"][name] = _encode(2.0 * _decode(entry, name))

    done = _cli("run", _edited(program, tmp_path, doubled), "--check", cwd=tmp_path)
    assert done.returncode == 1 and "FAIL" in done.stdout and "check failed" in done.stdout


def test_check_falls_back_to_the_float64_reference(program, tmp_path):
    done = _cli("run", _edited(program, tmp_path, lambda ref: ref.pop("pytorch")), "--check",
                "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    check = json.loads(done.stdout)["check"][0]
    assert check["reference"] == "float64" and check["ok"] and check["rel_error"] > 0


@pytest.mark.parametrize("edit, message", [
    (lambda ref: (ref.pop("pytorch"), ref.pop("float64")), "carries no reference"),
    (lambda ref: ref["pytorch"].update({k: {"shape": [10**9], "data": "eJw="}
                                        for k in ref["pytorch"]}), "reference for output"),
    (lambda ref: ref["pytorch"].update({k: {"shape": [8, 10], "data": "!!"}
                                        for k in ref["pytorch"]}), "is corrupt"),
])
def test_a_bad_reference_is_one_clean_error(program, tmp_path, edit, message):
    done = _cli("run", _edited(program, tmp_path, edit), "--check", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr


def test_check_with_other_inputs_is_refused(program, tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((8, 64), np.float32))
    done = _cli("run", program, "--check", "--inputs", tmp_path / "x.npz", cwd=tmp_path)
    assert done.returncode == 2 and "--check" in done.stderr and "Traceback" not in done.stderr
