"""run_tasks: the same results in-process and in local processes, resumable from its store,
and one clear error for a corrupt store or repeated keys."""

import json

import pytest

from chipforge.cluster import read_store, run_tasks
from chipforge.errors import ClusterError

CALLS = []


def square(x: int) -> dict:
    CALLS.append(x)
    return {"x": x, "y": x * x}


def test_in_process_and_local_processes_agree():
    tasks = [(f"k{i}", i) for i in range(5)]
    here = run_tasks(square, tasks)
    there = run_tasks(square, tasks, workers=2)
    assert here == there == {f"k{i}": {"x": i, "y": i * i} for i in range(5)}
    assert list(there) == [k for k, _ in tasks]  # in the tasks' order, not completion order


def test_store_resumes_and_skips_done_keys(tmp_path):
    store = tmp_path / "runs.jsonl"
    run_tasks(square, [("a", 2), ("b", 3)], store=store)
    CALLS.clear()
    out = run_tasks(square, [("a", 2), ("b", 3), ("c", 4)], store=store)
    assert CALLS == [4]  # only the new key ran
    assert out["c"] == {"x": 4, "y": 16} and out["a"] == {"x": 2, "y": 4}
    assert set(read_store(store)) == {"a", "b", "c"}


def test_torn_last_line_is_dropped_but_corrupt_middle_line_is_an_error(tmp_path):
    store = tmp_path / "runs.jsonl"
    store.write_text(json.dumps({"key": "a", "result": {"y": 1}}) + '\n{"key": "b", "res')
    assert read_store(store) == {"a": {"y": 1}}
    store.write_text('garbage\n' + json.dumps({"key": "a", "result": {"y": 1}}) + "\n")
    with pytest.raises(ClusterError, match=r"line 1 is not a stored result"):
        read_store(store)


def test_repeated_keys_and_bad_workers_are_refused():
    with pytest.raises(ClusterError, match=r"key 'a' appears twice"):
        run_tasks(square, [("a", 1), ("a", 2)])
    with pytest.raises(ClusterError, match=r"workers=0"):
        run_tasks(square, [("a", 1)], workers=0)
