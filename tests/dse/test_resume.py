"""A run killed with SIGKILL resumes with nothing lost and nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from dse_fixtures import TINY_CONSTRAINTS, write

from clitools import chipforge_exe

SPACE = """\
name: resume
base: forge-i1
params:
  cores: {min: 1, max: 16}
  clock_ghz: {min: 0.8, max: 2.0, step: 0.1}
  memory:
    - {kind: GDDR7, stacks: {choices: [8, 12, 16]}, capacity_per_stack_gb: {choices: [2, 3]}}
"""
BUDGET = 80


def _rows(db) -> dict[str, tuple]:
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {r[1]: r for r in con.execute("SELECT * FROM points")}
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        con.close()


@pytest.mark.slow
def test_sigkill_then_rerun_loses_and_duplicates_nothing(tmp_path):
    space = write(tmp_path, "space.yaml", SPACE)
    cons = write(tmp_path, "c.yaml", TINY_CONSTRAINTS)
    out = tmp_path / "run"
    cmd = [chipforge_exe(), "dse", "run", str(space), "--constraints", str(cons), "--out",
           str(out), "--trials", str(BUDGET), "--sampler", "nsga2", "--workers", "2",
           "--seed", "7"]
    env = {**os.environ, "CHIPFORGE_NO_BAR": "1"}
    # its own session, so the kill reaches the worker processes too
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(_rows(out / "results.sqlite")) < 12:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no rows stored within 120 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = _rows(out / "results.sqlite")
    assert 12 <= len(before) < BUDGET  # killed mid-run

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    after = _rows(out / "results.sqlite")
    assert len(after) == BUDGET
    params = [json.dumps(json.loads(r[3]), sort_keys=True) for r in after.values()]
    assert len(set(params)) == BUDGET  # no point twice
    assert all(after[h] == row for h, row in before.items())  # every earlier row unchanged
    assert f"{BUDGET} of {BUDGET} points stored ({BUDGET - len(before)} new)" in rerun.stdout
