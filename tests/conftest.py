"""Shared test set-up: this folder is on sys.path (pytest's rootdir conftest), so test
modules can import the small helpers that live beside it (``clitools``).

Under pytest-xdist (``make test`` runs ``pytest -n auto``) every core already runs one
worker process; numpy's OpenBLAS and torch's OpenMP/MKL would each start one thread per
core in every worker as well, N workers x N threads on N cores. One thread per worker
avoids that oversubscription. It must be set before numpy or torch is imported, which is
why it lives here (xdist sets PYTEST_XDIST_WORKER before the conftest is loaded). A
variable the user set is kept.
"""

import gc
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")


def pytest_collection_finish(session):
    """Move what collection built (the test modules, torch, transformers, Amaranth) out of
    the cyclic garbage collector's reach for the rest of the session, so its full
    collections do not walk it again. The collector's thresholds stay CPython's (with a
    larger young generation the workers reached 5-8 GB; not compared without)."""
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    """Under xdist, the modules that hold a test marked ``slow`` go first (in their usual
    order, each module kept whole for ``--dist loadfile``): the long RTL and compiler runs
    start at once and the many short modules fill the workers' ends, instead of one
    3-test Icarus module starting last and running alone (``make test`` passes
    ``--no-loadscope-reorder`` so that xdist keeps this order)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: modules stay whole
