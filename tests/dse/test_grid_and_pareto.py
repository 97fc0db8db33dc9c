"""The grid visits exactly the hand-enumerated points; the Pareto front equals a brute-force
dominance check; a seeded search gives the same points whatever the worker count."""

from __future__ import annotations

import csv
import random

from dse_fixtures import TINY_CONSTRAINTS, TINY_SPACE, write

from chipforge.dse import Store, load_problem, pareto_indices, point_hash, run_dse


def _brute_front(values, directions):
    def better_or_equal(a, b, d):
        return a >= b if d == "maximize" else a <= b

    front = []
    for i, a in enumerate(values):
        dominated = any(
            all(better_or_equal(b[k], a[k], d) for k, d in enumerate(directions))
            and any(b[k] != a[k] for k in range(len(directions)))
            for j, b in enumerate(values) if j != i)
        if not dominated:
            front.append(i)
    return front


def test_pareto_hand_example():
    # maximize both: (3,3), (2,4), (1,5) trade off; (2,2) and (1,1) are dominated by (3,3)
    values = [[1, 5], [2, 2], [2, 4], [3, 3], [1, 1]]
    assert pareto_indices(values, ["maximize", "maximize"]) == [0, 2, 3]
    # minimize the second instead: (3,3) beats (2,2)? no, (2,2) has the lower second value
    assert pareto_indices(values, ["maximize", "minimize"]) == [1, 3, 4]


def test_pareto_matches_brute_force_with_ties():
    rng = random.Random(5)
    directions = ["maximize", "minimize", "maximize"]
    values = [[rng.randint(0, 6) for _ in directions] for _ in range(150)]  # many ties
    assert pareto_indices(values, directions) == _brute_front(values, directions)


def test_grid_visits_exactly_the_enumerated_points(tmp_path):
    problem = load_problem(write(tmp_path, "space.yaml", TINY_SPACE),
                           write(tmp_path, "c.yaml", TINY_CONSTRAINTS))
    out = tmp_path / "run"
    summary = run_dse(problem, out, sampler="grid", workers=1)
    # params in field order: cores, clock_ghz, memory; the last varies fastest
    expected = [{"cores": c, "clock_ghz": f, "memory": m}
                for c in (2, 4) for f in (1.0, 1.5) for m in ("GDDR7 x8 3GB", "GDDR7 x16 3GB")]
    store = Store(out / "results.sqlite")
    rows = store.rows()
    store.close()
    assert [r.params for r in rows] == expected
    assert [r.trial for r in rows] == list(range(8))
    assert summary.evaluated == summary.budget == summary.new == 8
    # rerun: everything is stored, nothing is evaluated again
    assert run_dse(problem, out, sampler="grid", workers=1).new == 0

    # the Pareto CSV holds exactly the brute-force front of the feasible rows
    feasible = [r for r in rows if r.feasible]
    front = {feasible[i].hash[:16] for i in _brute_front(
        [r.objective_values for r in feasible], ["maximize", "minimize"])}
    with open(out / "pareto.csv") as f:
        assert {line["hash"] for line in csv.DictReader(f)} == front
    assert front and (out / "pareto.png").stat().st_size > 10_000


MEDIUM_SPACE = TINY_SPACE.replace("{choices: [2, 4]}", "{min: 1, max: 8}")  # 32 points


def test_seeded_search_does_not_depend_on_workers(tmp_path):
    problem = load_problem(write(tmp_path, "space.yaml", MEDIUM_SPACE),
                           write(tmp_path, "c.yaml", TINY_CONSTRAINTS))
    runs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        run_dse(problem, out, sampler="nsga2", trials=18, workers=workers, seed=3, batch=6)
        store = Store(out / "results.sqlite")
        rows = store.rows()
        store.close()
        assert all(r.hash == point_hash(r.params) for r in rows)
        runs.append([(r.trial, r.params, r.objective_values) for r in rows])
    assert runs[0] == runs[1]
    assert len({str(p) for _, p, _ in runs[0]}) == 18  # distinct points


def test_pareto_command_prints_the_stored_front(tmp_path):
    import json
    import subprocess

    from clitools import chipforge_exe

    problem = load_problem(write(tmp_path, "space.yaml", TINY_SPACE),
                           write(tmp_path, "c.yaml", TINY_CONSTRAINTS))
    run_dse(problem, tmp_path / "run", sampler="grid", workers=1)
    proc = subprocess.run([chipforge_exe(), "dse", "pareto", str(tmp_path / "run"), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "run" / "pareto.csv") as f:
        expected = {line["hash"] for line in csv.DictReader(f)}
    assert {p["hash"][:16] for p in json.loads(proc.stdout)} == expected
    bad = subprocess.run([chipforge_exe(), "dse", "pareto", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert (bad.returncode, bad.stderr) == (2, f"error: {tmp_path}: no results.sqlite; expected "
                                               "the --out folder of a chipforge dse run\n")
