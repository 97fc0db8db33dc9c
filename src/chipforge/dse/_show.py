"""Read a finished (or interrupted) run folder back: its objectives and Pareto front."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from chipforge.dse._errors import DseError
from chipforge.dse._pareto import pareto_rows
from chipforge.dse._store import DB_NAME, Row, Store


def front_of(out: Path) -> tuple[list[str], list[Row]]:
    """(objective names, Pareto rows) of the run stored in ``out``."""
    path = Path(out) / DB_NAME
    if not path.is_file():
        raise DseError(f"{out}: no {DB_NAME}; expected the --out folder of a chipforge dse run")
    store = Store(path)
    try:
        row = store._db.execute("SELECT value FROM meta WHERE key='description'").fetchone()
        rows = store.rows()
    except sqlite3.DatabaseError as exc:
        raise DseError(f"{path}: cannot read the results: {exc}") from None
    finally:
        store.close()
    if row is None:
        raise DseError(f"{path}: no run description; expected a chipforge dse results file")
    meta = json.loads(row[0])
    return meta["objectives"], pareto_rows(rows, meta["directions"])
