"""Where points are evaluated: in this process, in local worker processes, or on Ray.

Each executor takes a batch of points and yields their evaluations as they complete, so
the caller can store each one at once. The evaluation function is the same everywhere.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from chipforge.dse._errors import DseError
from chipforge.dse._evaluate import EvalContext, Evaluation, evaluate_point

_WORKER_CTX: EvalContext | None = None


def _init_worker(ctx: EvalContext, parent_pid: int) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx
    _die_with_parent(parent_pid)


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when the run's process dies, even by SIGKILL (which runs no
    cleanup): on Linux the kernel sends SIGKILL (prctl PR_SET_PDEATHSIG); elsewhere a
    thread polls the parent's pid."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent_pid:  # the parent died before prctl took effect
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="chipforge-parent-watch").start()


def _evaluate_in_worker(point: dict[str, Any]) -> Evaluation:
    assert _WORKER_CTX is not None, "worker started without its context"
    return evaluate_point(_WORKER_CTX, point)


class InProcess:
    """One worker: evaluate here (tests, profiling, --workers 1)."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx

    def run(self, points: list[dict[str, Any]]) -> Iterator[tuple[int, Evaluation]]:
        for i, point in enumerate(points):
            yield i, evaluate_point(self.ctx, point)

    def close(self) -> None:
        pass


class LocalProcesses:
    """A pool of worker processes, each with the context installed once."""

    def __init__(self, ctx: EvalContext, workers: int) -> None:
        # fork on Linux: workers start at once and inherit the imported modules
        method = "fork" if sys.platform.startswith("linux") else None
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                         initializer=_init_worker, initargs=(ctx, os.getpid()))

    def run(self, points: list[dict[str, Any]]) -> Iterator[tuple[int, Evaluation]]:
        futures = {self._pool.submit(_evaluate_in_worker, p): i for i, p in enumerate(points)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield futures[future], future.result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def _ray_evaluate(ctx: EvalContext, point: dict[str, Any]) -> Evaluation:
    return evaluate_point(ctx, point)


def require_ray() -> Any:
    """The ray module, or a DseError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise DseError("--ray needs Ray, which is not installed; expected it installed: "
                       "pip install 'chipforge[ray]'") from None
    return ray


class RayCluster:
    """The same evaluation as Ray tasks: joins RAY_ADDRESS if set, else starts a local Ray."""

    def __init__(self, ctx: EvalContext, workers: int) -> None:
        ray = self._ray = require_ray()
        if not ray.is_initialized():
            local = not os.environ.get("RAY_ADDRESS")
            ray.init(num_cpus=workers if local else None, include_dashboard=False,
                     log_to_driver=False)
        self._ctx = ray.put(ctx)
        self._task = ray.remote(num_cpus=1)(_ray_evaluate)

    def run(self, points: list[dict[str, Any]]) -> Iterator[tuple[int, Evaluation]]:
        refs = {self._task.remote(self._ctx, p): i for i, p in enumerate(points)}
        pending = list(refs)
        while pending:
            done, pending = self._ray.wait(pending, num_returns=1)
            yield refs[done[0]], self._ray.get(done[0])

    def close(self) -> None:
        self._ray.shutdown()


def make_executor(ctx: EvalContext, workers: int, use_ray: bool):
    if use_ray:
        return RayCluster(ctx, workers)
    if workers <= 1:
        return InProcess(ctx)
    return LocalProcesses(ctx, workers)
