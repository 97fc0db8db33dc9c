"""DSE under hostile input (issue 11, point 9): non-finite choices, astronomically large
spaces, two runs on one folder, corrupt or wrong-type --out, a bad seed, a killed parent.
Each is one DseError line (the CLI's exit 2), in bounded time and memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from dse_fixtures import TINY_CONSTRAINTS, TINY_SPACE, write

from chipforge.dse import DseError, load_problem, run_dse
from chipforge.dse._design import dimensions, space_size
from chipforge.dse._store import DB_NAME, Store

HUGE = """\
name: huge
base: forge-i1
params:
  cores: {min: 1, max: 1000000000000}
  clock_ghz: {min: 1.0, max: 2.0, step: 0.000001}
"""


def _problem(tmp_path, space: str = TINY_SPACE):
    return load_problem(write(tmp_path, "space.yaml", space),
                        write(tmp_path, "c.yaml", TINY_CONSTRAINTS))


def _error(fn, *args, **kw) -> str:
    with pytest.raises(DseError) as err:
        fn(*args, **kw)
    return str(err.value)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_non_finite_choice_is_refused_before_any_point(tmp_path, value):
    text = TINY_SPACE.replace("[1.0, 1.5]", f"[{value}, 1.5]")
    path = write(tmp_path, "space.yaml", text)
    assert _error(load_problem, path) == (f"{path}: params.clock_ghz.choices[0]: got "
                                          f"{float(value.replace('.', ''))!r}; input should "
                                          f"be a finite number")


def test_space_size_is_arithmetic_not_enumerated(tmp_path):
    problem = _problem(tmp_path, HUGE)
    start = time.perf_counter()
    size = space_size(dimensions(problem.space))
    assert time.perf_counter() - start < 1
    # hand count: 10^12 core counts x (1 + (2.0 - 1.0) / 1e-6) clocks
    assert size == 10**12 * 1_000_001


def test_a_grid_too_large_to_list_is_refused(tmp_path):
    problem = _problem(tmp_path, HUGE)
    assert _error(run_dse, problem, tmp_path / "run", sampler="grid") == (
        f"{problem.space_file}: the grid has 1,000,001,000,000,000,000 points; expected at "
        f"most 1,000,000 for --sampler grid (narrow the ranges, or use nsga2 or tpe with "
        f"--trials)")


def test_a_run_whose_points_all_fail_is_an_error(tmp_path):
    # every sampled core count is far above a chip spec's 1,000,000
    space = HUGE.replace("min: 1, max: 1000000000000", "min: 2000000, max: 3000000")
    problem = _problem(tmp_path, space)
    message = _error(run_dse, problem, tmp_path / "run", trials=2, workers=1)
    assert message.startswith(f"{tmp_path / 'run'}: all 2 points failed to evaluate, so there "
                              f"is no result (each is stored with its error); first: derived "
                              f"from 'forge-i1': cores.count: got ")


def test_a_negative_seed_is_refused(tmp_path):
    assert _error(run_dse, _problem(tmp_path), tmp_path / "run", seed=-1) == (
        "--seed: got -1; expected an integer from 0 to 4294967295")


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    holder = Store(out / DB_NAME, exclusive=True)  # a run in progress holds the lock
    try:
        assert _error(run_dse, _problem(tmp_path), out, trials=2, workers=1) == (
            f"{out}: another chipforge dse run is using this folder; expected one run per "
            f"--out (wait for it to finish, or use another folder)")
    finally:
        holder.close()
    # released: the run goes ahead
    assert run_dse(_problem(tmp_path), out, trials=2, workers=1).evaluated == 2


def test_corrupt_or_wrong_type_out(tmp_path):
    a_file = write(tmp_path, "file.txt", "not a folder")
    assert _error(run_dse, _problem(tmp_path), a_file, trials=2, workers=1).startswith(
        f"{a_file}: cannot use it as the run folder: File exists; expected a folder or a new "
        f"path")
    out = tmp_path / "corrupt"
    out.mkdir()
    (out / DB_NAME).write_bytes(b"\x00garbage" * 1000)
    assert _error(run_dse, _problem(tmp_path), out, trials=2, workers=1) == (
        f"{out / DB_NAME}: cannot open the results database: file is not a database; "
        f"expected a chipforge dse results file (or none, to start a run)")


WORKERS_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from dse_fixtures import TINY_CONSTRAINTS, TINY_SPACE, write
from pathlib import Path
from chipforge.dse import load_problem
from chipforge.dse._evaluate import EvalContext
from chipforge.dse._execute import LocalProcesses
folder = Path({folder!r})
problem = load_problem(write(folder, "s.yaml", TINY_SPACE), write(folder, "c.yaml",
                       TINY_CONSTRAINTS))
pool = LocalProcesses(EvalContext(problem), 2)
list(pool.run([{{"cores": 2, "clock_ghz": 1.0, "memory": "GDDR7 x8 3GB"}}] * 4))
print(" ".join(str(p) for p in pool._pool._processes), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for its (dead) parent's reaper counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_run_is_killed(tmp_path):
    tests = os.path.dirname(__file__)
    script = WORKERS_SCRIPT.format(tests=tests, folder=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids), proc.stderr.read()
    proc.send_signal(signal.SIGKILL)  # no cleanup runs in the parent
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids), "workers outlived their parent"
