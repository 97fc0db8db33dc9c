"""Where a sweep of independent evaluations runs: in this process, in local worker
processes, or on Ray; with a JSON-lines store that makes a long sweep resumable.

The plan searches and serving sweeps each evaluate many independent tasks (a plan, a
deployment, a chip count). ``run_tasks`` runs them and returns each result by its key. With
``store``, every result is appended to ``store`` as one JSON line as soon as it completes,
and a rerun skips the keys already there: a run killed part-way loses at most the tasks in
flight. Ray is the distributed engine (``ray.init()`` joins ``RAY_ADDRESS`` or starts a
local instance); local processes are the default.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from chipforge.errors import ClusterError

Task = tuple[str, Any]
Fn = Callable[[Any], dict]


def read_store(store: Path) -> dict[str, dict]:
    """The results a store holds, by key. A torn last line (a run killed mid-write) is
    dropped; any other unreadable line is an error naming the file and line."""
    if not store.exists():
        return {}
    lines = store.read_text(encoding="utf-8").splitlines()
    out: dict[str, dict] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key, result = row["key"], row["result"]
        except (json.JSONDecodeError, KeyError, TypeError):
            if number == len(lines):
                break  # the write the kill interrupted
            raise ClusterError(f"{store}: line {number} is not a stored result; expected "
                               '{"key": ..., "result": {...}} (delete the file to start '
                               "over)") from None
        out[str(key)] = result
    return out


def _check_tasks(tasks: Sequence[Task]) -> None:
    seen: set[str] = set()
    for key, _ in tasks:
        if key in seen:
            raise ClusterError(f"run_tasks: key {key!r} appears twice; expected unique keys")
        seen.add(key)


def _in_process(fn: Fn, tasks: Sequence[Task]) -> Iterator[tuple[str, dict]]:
    for key, arg in tasks:
        yield key, fn(arg)


def _local(fn: Fn, tasks: Sequence[Task], workers: int) -> Iterator[tuple[str, dict]]:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(fn, arg): key for key, arg in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()


def _ray(fn: Fn, tasks: Sequence[Task]) -> Iterator[tuple[str, dict]]:
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install 'chipforge[ray]'") from None
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        ray.init(log_to_driver=False)
    remote = ray.remote(fn)
    pending = {remote.remote(arg): key for key, arg in tasks}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            yield pending.pop(ref), ray.get(ref)


def _progress(label: str | None, total: int):
    if label is None or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    bar.start()
    return bar, bar.add_task(label, total=total)


def run_tasks(fn: Fn, tasks: Sequence[Task], *, store: Path | None = None,
              use_ray: bool = False, workers: int = 1,
              progress: str | None = None) -> dict[str, dict]:
    """``{key: fn(arg)}`` for every ``(key, arg)`` in ``tasks``.

    ``fn`` must be a module-level (picklable) function returning a JSON-serializable dict.
    ``workers`` > 1 runs local processes; ``use_ray`` runs on Ray. With ``store`` (a JSON
    lines file), finished keys are skipped and new results appended as they complete.
    ``progress`` labels a progress bar on stderr (shown only on a terminal).
    """
    _check_tasks(tasks)
    if workers < 1:
        raise ClusterError(f"run_tasks: workers={workers!r}; expected at least 1")
    done = read_store(store) if store is not None else {}
    todo = [(key, arg) for key, arg in tasks if key not in done]
    results = {key: done[key] for key, _ in tasks if key in done}
    if use_ray:
        stream = _ray(fn, todo)
    elif workers > 1 and len(todo) > 1:
        stream = _local(fn, todo, workers)
    else:
        stream = _in_process(fn, todo)
    bar = _progress(progress, len(tasks))
    if store is not None:
        store.parent.mkdir(parents=True, exist_ok=True)
    try:
        if bar is not None:
            bar[0].update(bar[1], completed=len(results))
        for key, result in stream:
            results[key] = result
            if store is not None:
                with store.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "result": result}) + "\n")
            if bar is not None:
                bar[0].advance(bar[1])
    finally:
        if bar is not None:
            bar[0].stop()
    return {key: results[key] for key, _ in tasks}
