"""--ray runs the same evaluation on Ray (a local Ray here) and stores the same results;
without Ray installed it is one clear error before any work."""

from __future__ import annotations

import sys

import pytest
from dse_fixtures import TINY_CONSTRAINTS, TINY_SPACE, write

from chipforge.dse import DseError, Store, load_problem, run_dse


def _stored(out):
    store = Store(out / "results.sqlite")
    rows = [(r.trial, r.params, r.objective_values, r.feasible) for r in store.rows()]
    store.close()
    return rows


@pytest.mark.slow
def test_ray_stores_what_local_evaluation_stores(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    problem = load_problem(write(tmp_path, "space.yaml", TINY_SPACE),
                           write(tmp_path, "c.yaml", TINY_CONSTRAINTS))
    run_dse(problem, tmp_path / "ray", sampler="grid", workers=2, use_ray=True)
    run_dse(problem, tmp_path / "local", sampler="grid", workers=1)
    ray_rows, local_rows = _stored(tmp_path / "ray"), _stored(tmp_path / "local")
    assert len(ray_rows) == 8 and ray_rows == local_rows


def test_ray_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    problem = load_problem(write(tmp_path, "space.yaml", TINY_SPACE))
    with pytest.raises(DseError) as info:
        run_dse(problem, tmp_path / "run", sampler="grid", use_ray=True)
    assert str(info.value) == ("--ray needs Ray, which is not installed; expected it "
                               "installed: pip install 'chipforge[ray]'")
    assert not (tmp_path / "run").exists()
