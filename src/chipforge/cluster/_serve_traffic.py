"""Serving traffic: request arrivals (Poisson or a trace CSV) and prompt / output lengths.

A :class:`Traffic` turns into three arrays, sorted by arrival: ``arrival_s``, ``input_len``
and ``output_len``. Sampling uses numpy's PCG64 generator seeded by ``seed``; arrivals and
each length draw from their own child stream, so changing a length distribution leaves the
arrival times unchanged.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chipforge.errors import ClusterError

__all__ = ["LengthDist", "Traffic", "read_trace"]

LENGTH_KINDS = ("fixed", "uniform", "lognormal", "empirical")
ARRIVALS = ("poisson", "trace")
TRACE_COLUMNS = ("arrival_s", "input_len", "output_len")
# assumption: a bound on one run's memory (~0.5 KB of lists and arrays per request, so
# ~5 GB) and time (1-1.5 min per million requests on one core); a larger study splits into seeds
MAX_REQUESTS = 10_000_000


@dataclass(frozen=True)
class LengthDist:
    """A distribution of token counts (each sample is an integer >= 1).

    ``fixed``: always ``value``; ``uniform``: integers in [``low``, ``high``]; ``lognormal``:
    a log-normal whose *mean* is ``mean`` tokens and whose log-space standard deviation is
    ``sigma`` (rounded, at least 1); ``empirical``: the trace's own column (see :class:`Traffic`).
    Build them with the class methods.
    """

    kind: str
    value: int = 0
    low: int = 0
    high: int = 0
    mean: float = 0.0
    sigma: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in LENGTH_KINDS:
            raise ClusterError(f"LengthDist.kind={self.kind!r}: expected one of {LENGTH_KINDS}")
        if self.kind == "fixed":
            _check_int("LengthDist.value", self.value, 1)
        elif self.kind == "uniform":
            _check_int("LengthDist.low", self.low, 1)
            _check_int("LengthDist.high", self.high, self.low)
        elif self.kind == "lognormal":
            if not (isinstance(self.mean, int | float) and math.isfinite(self.mean)
                    and self.mean >= 1):
                raise ClusterError(f"LengthDist.mean={self.mean!r}: expected a number >= 1")
            if not (isinstance(self.sigma, int | float) and 0 <= self.sigma <= 5):
                raise ClusterError(
                    f"LengthDist.sigma={self.sigma!r}: expected a log-space sigma in [0, 5]")

    @classmethod
    def fixed(cls, value: int) -> LengthDist:
        return cls("fixed", value=value)

    @classmethod
    def uniform(cls, low: int, high: int) -> LengthDist:
        return cls("uniform", low=low, high=high)

    @classmethod
    def lognormal(cls, mean: float, sigma: float) -> LengthDist:
        return cls("lognormal", mean=mean, sigma=sigma)

    @classmethod
    def empirical(cls) -> LengthDist:
        return cls("empirical")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` lengths (int64). ``empirical`` has no samples of its own: Traffic draws it."""
        if self.kind == "fixed":
            return np.full(n, self.value, dtype=np.int64)
        if self.kind == "uniform":
            return rng.integers(self.low, self.high, size=n, endpoint=True, dtype=np.int64)
        if self.kind == "lognormal":
            # E[exp(N(mu, s^2))] = exp(mu + s^2/2), so mu = ln(mean) - s^2/2 keeps the mean
            mu = math.log(self.mean) - self.sigma ** 2 / 2
            draws = np.rint(rng.lognormal(mu, self.sigma, size=n))
            return np.maximum(draws, 1).astype(np.int64)
        raise ClusterError("LengthDist.empirical() needs a trace: set Traffic.trace_path")


def _check_int(field: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ClusterError(f"{field}={value!r}: expected an integer >= {least}")


@dataclass(frozen=True)
class Traffic:
    """``n_requests`` requests arriving as a Poisson process of ``rate_per_s`` (None: all at
    t = 0, the "infinite request rate" of throughput benchmarks), or at the trace's
    ``arrival_s`` times (``arrival="trace"``; a ``rate_per_s`` then rescales the trace's
    time axis so its mean rate is ``rate_per_s``).

    ``empirical`` lengths take the trace's columns: its own rows in order with trace
    arrivals, rows drawn with replacement (input and output from the same row) otherwise.
    """

    rate_per_s: float | None
    n_requests: int
    input_len: LengthDist
    output_len: LengthDist
    seed: int = 0
    arrival: str = "poisson"
    trace_path: Path | None = None

    def __post_init__(self) -> None:
        if self.rate_per_s is not None and not (
                isinstance(self.rate_per_s, int | float) and math.isfinite(self.rate_per_s)
                and self.rate_per_s > 0):
            raise ClusterError(f"Traffic.rate_per_s={self.rate_per_s!r}: expected a rate > 0 "
                               "requests/s, or None for all requests at t = 0")
        _check_int("Traffic.n_requests", self.n_requests, 1)
        if self.n_requests > MAX_REQUESTS:
            raise ClusterError(f"Traffic.n_requests={self.n_requests!r}: expected at most "
                               f"{MAX_REQUESTS:,} (the simulator keeps ~0.5 KB per request)")
        _check_int("Traffic.seed", self.seed, 0)
        for field in ("input_len", "output_len"):
            if not isinstance(getattr(self, field), LengthDist):
                raise ClusterError(f"Traffic.{field}={getattr(self, field)!r}: expected a "
                                   "LengthDist (LengthDist.fixed(128), .lognormal(...), ...)")
        if self.arrival not in ARRIVALS:
            raise ClusterError(f"Traffic.arrival={self.arrival!r}: expected one of {ARRIVALS}")
        needs_trace = self.arrival == "trace" or "empirical" in (
            self.input_len.kind, self.output_len.kind)
        if needs_trace and self.trace_path is None:
            raise ClusterError("Traffic.trace_path=None: trace arrivals and empirical lengths "
                               f"need a trace CSV with columns {', '.join(TRACE_COLUMNS)}")

    def requests(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(arrival_s float64, input_len int64, output_len int64), sorted by arrival."""
        n = self.n_requests
        arrival_rng, input_rng, output_rng, row_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(4))
        trace = read_trace(Path(self.trace_path)) if self.trace_path is not None else None
        rows = None
        if self.arrival == "trace":
            assert trace is not None
            if len(trace[0]) < n:
                raise ClusterError(f"Traffic.n_requests={n!r}: the trace {self.trace_path} "
                                   f"has only {len(trace[0])} rows")
            rows = np.arange(n)
            arrival = trace[0][:n] - trace[0][0]
            if self.rate_per_s is not None and n > 1 and arrival[-1] > 0:
                arrival = arrival * ((n - 1) / arrival[-1] / self.rate_per_s)
        elif self.rate_per_s is None:
            arrival = np.zeros(n)
        else:
            arrival = np.cumsum(arrival_rng.exponential(1.0 / self.rate_per_s, size=n))
        if trace is not None and rows is None:
            rows = row_rng.integers(0, len(trace[0]), size=n)
        lengths = []
        for dist, rng, column in ((self.input_len, input_rng, 1), (self.output_len, output_rng, 2)):
            if dist.kind == "empirical":
                assert trace is not None and rows is not None
                lengths.append(trace[column][rows])
            else:
                lengths.append(dist.sample(rng, n))
        return arrival.astype(np.float64), lengths[0], lengths[1]


def read_trace(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A trace CSV (columns arrival_s, input_len, output_len; others ignored) as arrays sorted
    by arrival. Every bad cell is a ClusterError naming the file, line and column."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise ClusterError(f"trace_path={str(path)!r}: cannot be read ({exc.strerror}); "
                           f"expected a CSV with columns {', '.join(TRACE_COLUMNS)}") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in TRACE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ClusterError(f"{path}: header {reader.fieldnames!r} lacks {missing}; expected "
                               f"columns {', '.join(TRACE_COLUMNS)}")
        arrival, inputs, outputs = [], [], []
        for row in reader:
            line = reader.line_num
            arrival.append(_cell(path, line, "arrival_s", row["arrival_s"], float, 0))
            inputs.append(_cell(path, line, "input_len", row["input_len"], int, 1))
            outputs.append(_cell(path, line, "output_len", row["output_len"], int, 1))
    if not arrival:
        raise ClusterError(f"{path}: no rows; expected at least one request")
    order = np.argsort(np.asarray(arrival), kind="stable")
    return (np.asarray(arrival, dtype=np.float64)[order],
            np.asarray(inputs, dtype=np.int64)[order], np.asarray(outputs, dtype=np.int64)[order])


def _cell(path: Path, line: int, column: str, text: str | None, kind: type, least: int) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value) or value < least:
        what = "a number of seconds >= 0" if kind is float else f"an integer >= {least}"
        raise ClusterError(f"{path} line {line}, column {column}: {text!r}; expected {what}")
    return value
