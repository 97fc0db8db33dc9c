"""Hostile .cfp files (issue 11, point 9): sizes are capped against the declared DRAM
before anything inflates, program.json is checked field by field, and every fault is one
ProgramError line naming the file, the field and what was expected."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import zipfile

import numpy as np
import pytest

from chipforge.isa import Program, ProgramError, TensorPlacement, assemble
from clitools import chipforge_exe

HEADER = {"chip": "forge-i1", "dram_bytes": 4096, "inputs": ["x"], "outputs": [],
          "meta": {}, "cores": 1, "tensors": {"x": [0, [4, 8], "bf16"]}}


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _write(path, header=None, **members) -> str:
    members = {"core0.bin": b"", "dram.npz": _npz(), **members}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("program.json", json.dumps(HEADER if header is None else header))
        for name, data in members.items():
            if data is not None:
                zf.writestr(name, data)
    return str(path)


def _error(path) -> str:
    with pytest.raises(ProgramError) as err:
        Program.load(path)
    return str(err.value).removeprefix(f"{path}: ")


def test_a_valid_program_round_trips(tmp_path):
    prog = Program("forge-i1", [[assemble("HALT")]], 4096,
                   {"x": TensorPlacement("x", 0, (4, 8), "bf16")}, ["x"], [],
                   {64: bytes(range(16))})
    back = Program.load(prog.save(tmp_path / "p.cfp"))
    assert back.cores == prog.cores and back.tensors == prog.tensors
    assert back.init == {64: bytes(range(16))} and back.dram_bytes == 4096


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path):
    path = _write(tmp_path / "bomb.cfp", **{"dram.npz": b"\0" * (64 * 2**20)})
    assert os.path.getsize(path) < 100_000  # 64 MiB of zeros deflates ~1000:1
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = _error(path)
    assert message == ("dram.npz inflates to 67,108,864 bytes; expected at most 1,052,672 "
                       "for this program (a zip bomb or a corrupt file)")
    # the 64 MiB member was never read (ru_maxrss is in KiB on Linux)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 * 2**10


def test_a_bomb_nested_in_the_npz_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as inner:
        inner.writestr("a0.npy", b"\0" * (8 * 2**20))
    path = _write(tmp_path / "nested.cfp", **{"dram.npz": buf.getvalue()})
    assert _error(path) == ("dram.npz holds arrays of 8,388,608 bytes; expected at most "
                            "1,052,672 for this program")


def test_pickled_arrays_are_refused(tmp_path):
    obj = np.array([{"a": 1}], dtype=object)
    path = _write(tmp_path / "pickle.cfp", **{"inputs.npz": _npz(x=obj)})
    assert _error(path).startswith("inputs.npz is not a readable .npz of arrays: "
                                   "Object arrays cannot be loaded when allow_pickle=False")


@pytest.mark.parametrize(("change", "message"), [
    ({"cores": -1}, "program.json: cores: got -1; expected an integer from 1 to 65536"),
    ({"cores": True}, "program.json: cores: got True; expected an integer from 1 to 65536"),
    ({"chip": ["forge-i1"]},
     "program.json: chip: got ['forge-i1']; expected a catalog chip name or a spec file path"),
    ({"dram_bytes": 2**40}, "program.json: dram_bytes: got 1099511627776; expected an "
                            "integer from 1 to 4,294,967,296"),
    ({"tensors": {"x": [0, [4, -8], "bf16"]}}, "program.json: tensors.x[1]: got [4, -8]; "
                                               "expected a shape: a list of at most 16 "
                                               "non-negative integers"),
    ({"tensors": {"x": [0, [4, 8], "bf17"]}}, "program.json: tensors.x[2]: got 'bf17'; "
                                              "expected one of "),
    # 4096 x 8 bf16 elements = 65,536 bytes, past the declared 4,096-byte DRAM
    ({"tensors": {"x": [0, [4096, 8], "bf16"]}},
     "program.json: tensors.x: got [0, [4096, 8], 'bf16']; expected a tensor inside the "
     "4,096-byte DRAM (it ends at byte 65,536)"),
    ({"inputs": ["y"]}, "program.json: inputs[0]: got 'y'; expected a name in tensors"),
    ({"dram_bytes": None}, "program.json: dram_bytes: got None; expected an integer from 1 "
                           "to 4,294,967,296"),
])
def test_program_json_is_checked(tmp_path, change, message):
    assert _error(_write(tmp_path / "p.cfp", {**HEADER, **change})).startswith(message)


def test_missing_member_and_corrupt_streams(tmp_path):
    assert _error(_write(tmp_path / "a.cfp", **{"core0.bin": None})) == (
        "not a chipforge program (.cfp): \"There is no item named 'core0.bin' in the "
        "archive\"")
    assert _error(_write(tmp_path / "b.cfp", **{"core0.bin": b"\xff" * 20})) == (
        "program of 20 bytes is not a whole number of 96-byte instructions")
    deep = b"[" * 100_000 + b"]" * 100_000
    path = tmp_path / "c.cfp"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("program.json", deep)
    assert _error(path) == "program.json is not valid JSON: nested too deeply"
    path.write_bytes(b"\xff\xfe" + "{}".encode("utf-16-le"))
    assert _error(path) == "not a chipforge program (.cfp): File is not a zip file"


def _cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([chipforge_exe(), *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, "COLUMNS": "200"})


def test_run_refuses_a_spec_path_the_program_chose_and_a_gpu(tmp_path):
    spec = tmp_path / "my.yaml"
    path = _write(tmp_path / "p.cfp", {**HEADER, "chip": str(spec)})
    proc = _cli("run", path, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == (f"error: {path}: the program names chip {str(spec)!r}, which is "
                           f"not in the catalog; a spec file is only loaded when you pass "
                           f"it: --chip PATH\n")
    gpu = _write(tmp_path / "g.cfp", {**HEADER, "chip": "h100-sxm"})
    proc = _cli("run", gpu, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == (f"error: {gpu}: chip 'h100-sxm' is a gpu; expected a chipforge "
                           f"accelerator (the simulator runs its ISA)\n")


def test_run_inputs_with_pickled_arrays_are_one_error(tmp_path):
    path = _write(tmp_path / "p.cfp")
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.array([{"a": 1}], dtype=object))
    proc = _cli("run", path, "--inputs", str(inputs), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == (f"error: {inputs}: cannot read inputs (expected an .npz of named "
                           f"arrays): Object arrays cannot be loaded when allow_pickle=False\n")


def test_many_core_streams_are_capped_in_all(tmp_path, monkeypatch):
    from chipforge.isa import _program

    monkeypatch.setattr(_program, "MAX_INSTRUCTIONS", 10)  # 10 x 96 bytes in all
    header = {**HEADER, "cores": 2}
    stream = bytes(96 * 6)  # 6 instructions' bytes per core, 12 in all
    path = _write(tmp_path / "p.cfp", header, **{"core0.bin": stream, "core1.bin": stream})
    assert _error(path) == ("the core streams inflate to 1,152 bytes; expected at most 10 "
                            "instructions in all (960 bytes)")
