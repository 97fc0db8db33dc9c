"""Results in SQLite, one row per evaluated point, written as each result comes in.

The point's canonical hash is UNIQUE, so a point is never stored twice; each row is its own
committed transaction (WAL journal), so a run killed with SIGKILL loses at most the points
still being evaluated, and a rerun replays the stored rows and carries on.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chipforge.dse._errors import DseError

DB_NAME = "results.sqlite"  # in the run folder


def _take_lock(path: Path) -> Any:
    """An exclusive advisory lock on ``path`` (held while the returned file is open)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (documented in docs/dse.md)
        return None
    try:
        handle = open(path, "a")  # noqa: SIM115 - held open for the run's lifetime
    except OSError as exc:
        raise DseError(f"{path}: cannot create the run lock: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DseError(f"{path.parent}: another chipforge dse run is using this folder; "
                       f"expected one run per --out (wait for it to finish, or use another "
                       f"folder)") from None
    return handle

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    trial INTEGER NOT NULL,          -- the order the search asked for it
    params TEXT NOT NULL,            -- JSON: dimension -> value
    metrics TEXT NOT NULL,           -- JSON: metric -> value
    objective_values TEXT,           -- JSON list in objective order; NULL if failed
    feasible INTEGER NOT NULL,
    violations TEXT NOT NULL,        -- JSON list of the constraints it breaks
    constraint_values TEXT NOT NULL, -- JSON list, <= 0 is satisfied (Optuna's convention)
    system_attrs TEXT NOT NULL,      -- JSON: the Optuna trial's system attributes, replayed
    eval_s REAL NOT NULL,
    created_s REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Row:
    hash: str
    trial: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    objective_values: list[float] | None
    feasible: bool
    violations: list[str]
    constraint_values: list[float]
    system_attrs: dict[str, Any]
    eval_s: float


class Store:
    """The results database of one run folder."""

    def __init__(self, path: Path, *, exclusive: bool = False) -> None:
        """Open (or create) the database; ``exclusive`` holds the folder's lock until
        close, so two runs on one folder cannot both add points (the budget would
        overshoot, with duplicated trial numbers)."""
        self.path = Path(path)
        self._lock: Any = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DseError(f"{self.path.parent}: cannot use it as the run folder: "
                           f"{exc.strerror or exc}; expected a folder or a new path") from None
        if exclusive:
            self._lock = _take_lock(self.path.with_name(self.path.name + ".lock"))
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit per row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._release()
            raise DseError(f"{self.path}: cannot open the results database: {exc}; expected "
                           f"a chipforge dse results file (or none, to start a run)") from None

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None

    def check_problem(self, fingerprint: str, description: str) -> None:
        """Bind the folder to one problem; refuse to resume a different one."""
        row = self._db.execute("SELECT value FROM meta WHERE key='problem'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('problem', ?), ('description', ?)",
                             (fingerprint, description))
        elif row[0] != fingerprint:
            raise DseError(f"{self.path}: holds a run of a different problem (space, "
                           "constraints, objectives, sampler or seed changed); expected the "
                           "same problem to resume, or use a new --out folder")

    def add(self, row: Row) -> bool:
        """Store one result; False if that point was already stored."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO points (hash, trial, params, metrics, objective_values, "
            "feasible, violations, constraint_values, system_attrs, eval_s, created_s) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (row.hash, row.trial, json.dumps(row.params, sort_keys=True),
             json.dumps(row.metrics, sort_keys=True),
             None if row.objective_values is None else json.dumps(row.objective_values),
             int(row.feasible), json.dumps(row.violations), json.dumps(row.constraint_values),
             json.dumps(row.system_attrs, sort_keys=True), row.eval_s, time.time()))
        return cur.rowcount == 1

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM points").fetchone()[0]

    def hashes(self) -> set[str]:
        return {h for (h,) in self._db.execute("SELECT hash FROM points")}

    def rows(self) -> list[Row]:
        """Every stored row, in the order the search asked for them."""
        cur = self._db.execute(
            "SELECT hash, trial, params, metrics, objective_values, feasible, violations, "
            "constraint_values, system_attrs, eval_s FROM points ORDER BY trial, id")
        return [Row(h, t, json.loads(p), json.loads(m), None if v is None else json.loads(v),
                    bool(f), json.loads(vi), json.loads(c), json.loads(s), e)
                for h, t, p, m, v, f, vi, c, s, e in cur]

    def next_trial(self) -> int:
        (last,) = self._db.execute("SELECT MAX(trial) FROM points").fetchone()
        return 0 if last is None else last + 1
