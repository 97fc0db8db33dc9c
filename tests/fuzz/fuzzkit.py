"""Seeded generators and the contract every fuzz case checks (issue 11, point 9).

The contract: an entry point given hostile input either returns a correct result or
raises one ChipforgeError whose message is a single line; it never raises anything else
(a traceback for a user), never runs past a per-case time limit, and the whole module's
cases stay within a memory bound. Generators are seeded so a failure reproduces: the
case's seed is in the test id.
"""

from __future__ import annotations

import contextlib
import io
import random
import resource
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from chipforge.errors import ChipforgeError

CASE_TIMEOUT_S = 5.0  # any single hostile input; the slowest valid ones take ~0.1 s
MODULE_RSS_GROWTH_BYTES = 1 << 30  # ru_maxrss growth over a module's cases


class CaseTimeout(Exception):
    """Raised in the case by SIGALRM when it runs past CASE_TIMEOUT_S."""


@contextlib.contextmanager
def time_limit(seconds: float = CASE_TIMEOUT_S) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def check_case(fn: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", result) or ("error", message) under the contract; anything else fails."""
    with time_limit():
        try:
            return "ok", fn()
        except ChipforgeError as exc:
            message = str(exc)
            assert message and "\n" not in message, f"not one line: {message!r}"
            assert "Traceback" not in message
            return "error", message


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``chipforge ARGS`` in this process through the console entry point: (exit status,
    stdout, stderr). An exception other than SystemExit escapes: a user would have seen
    a traceback."""
    from chipforge.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["chipforge", *args]
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit():
            main()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
    return (code if isinstance(code, int) else 1), out.getvalue(), err.getvalue()


def assert_clean_cli(code: int, stderr: str) -> None:
    """Exit 0/1 with output, or 2 with one ``error:`` line (or click's usage box)."""
    assert "Traceback" not in stderr, stderr
    assert code in (0, 1, 2), (code, stderr)
    if code == 2 and stderr.startswith("error: "):
        assert stderr.count("\n") == 1, f"more than one line: {stderr!r}"


# ---- mutations --------------------------------------------------------------------------
EXTREME_NUMBERS = ["0", "-1", "1e400", "-1e400", ".nan", ".inf", "nan", "1e9", "1000000000",
                   "99999999999999999999999", "0.0", "-0", "1e-300", "2**31", "0x10",
                   "\u0664\u0662", "1_000", "true", "null", "[]", "{}", "''"]
JUNK = ["&a", "*a", "!!python/object:os.system", "<<: *a", "%YAML 1.1", "---", "...",
        "\t", "\x00", "\ufeff", "\u202e", ": :", "- - -", "{", "]", "'", '"', "#", "|",
        "\\", "\udcff"]


def mutate_text(text: str, rng: random.Random, edits: int = 3) -> str:
    """A few random edits: swap a number for an extreme one, insert junk, delete, cut or
    repeat a line, flip a character."""
    lines = text.split("\n")
    for _ in range(edits):
        i = rng.randrange(len(lines))
        kind = rng.randrange(6)
        line = lines[i]
        if kind == 0:
            nums = [t for t in line.replace(",", " ").replace("}", " ").split()
                    if t[:1].isdigit()]
            if nums:
                lines[i] = line.replace(rng.choice(nums), rng.choice(EXTREME_NUMBERS), 1)
        elif kind == 1:
            at = rng.randrange(len(line) + 1)
            lines[i] = line[:at] + rng.choice(JUNK) + line[at:]
        elif kind == 2 and len(lines) > 1:
            del lines[i]
        elif kind == 3:
            lines.insert(i, line)
        elif kind == 4:
            lines = lines[:i + 1]
        elif line:
            at = rng.randrange(len(line))
            lines[i] = line[:at] + chr(rng.randrange(32, 0x3000)) + line[at + 1:]
    return "\n".join(lines)


def mutate_bytes(data: bytes, rng: random.Random, edits: int = 4) -> bytes:
    """Flip, overwrite, cut or duplicate random bytes."""
    buf = bytearray(data)
    for _ in range(edits):
        if not buf:
            break
        i = rng.randrange(len(buf))
        kind = rng.randrange(4)
        if kind == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            buf[i] = rng.randrange(256)
        elif kind == 2:
            del buf[i:i + rng.randrange(1, 64)]
        else:
            buf[i:i] = buf[i:i + rng.randrange(1, 64)]
    return bytes(buf)


def random_tree(rng: random.Random, depth: int = 0) -> Any:
    """A random YAML/JSON-like value: scalars of every type, lists, mappings."""
    if depth > 4 or rng.random() < 0.4:
        return rng.choice([0, -1, 1, 10**30, 1.5, float("nan"), float("inf"), "", "x",
                           "1.41 GHz", "-5 GB/s", "1e400 GHz", "80 GB", True, None])
    if rng.random() < 0.5:
        return [random_tree(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["name", "kind", "clock", "cores", "count", "rows", "cols", "macs_per_cycle",
            "packing", "bf16", "memory", "value", "source", "size", "zz"]
    return {rng.choice(keys): random_tree(rng, depth + 1) for _ in range(rng.randrange(5))}
