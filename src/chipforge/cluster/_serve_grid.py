"""Piecewise-linear tables: the serving step cost's precomputed curves (kept out of the
event loop's way: one lookup is a bisection and a few multiplications)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def _segment(grid: Sequence[float], x: float) -> tuple[int, float]:
    """The segment ``i`` holding ``x`` (clamped to the first/last, so values outside the
    grid extrapolate the end segment's line) and the position ``x`` within it."""
    i = bisect_right(grid, x, 1, len(grid) - 1) - 1
    return i, (x - grid[i]) / (grid[i + 1] - grid[i])


@dataclass(frozen=True)
class Curve:
    """``y(x)`` sampled at ``xs`` (increasing, at least two), linear between samples and
    along the end segments outside them."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    @classmethod
    def sample(cls, fn: Callable[[float], float], xs: Sequence[float]) -> Curve:
        return cls(tuple(float(x) for x in xs), tuple(float(fn(x)) for x in xs))

    def __call__(self, x: float) -> float:
        i, t = _segment(self.xs, x)
        return self.ys[i] + t * (self.ys[i + 1] - self.ys[i])


@dataclass(frozen=True)
class Surface:
    """``z(x, y)`` sampled on the grid ``xs`` x ``ys``, bilinear between samples (exact for
    ``a + b·x + c·y + d·x·y``, the shape of attention time in sequences and context)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    zs: tuple[tuple[float, ...], ...]  # zs[i][j] = z(xs[i], ys[j])

    @classmethod
    def sample(cls, fn: Callable[[float, float], float], xs: Sequence[float],
               ys: Sequence[float]) -> Surface:
        return cls(tuple(float(x) for x in xs), tuple(float(y) for y in ys),
                   tuple(tuple(float(fn(x, y)) for y in ys) for x in xs))

    def __call__(self, x: float, y: float) -> float:
        i, t = _segment(self.xs, x)
        j, u = _segment(self.ys, y)
        z = self.zs
        low = z[i][j] + u * (z[i][j + 1] - z[i][j])
        high = z[i + 1][j] + u * (z[i + 1][j + 1] - z[i + 1][j])
        return low + t * (high - low)


def powers_of_two(first: int, last: int) -> list[int]:
    """``first, 2·first, ...`` up to the first power at or past ``last``."""
    out = [first]
    while out[-1] < last:
        out.append(out[-1] * 2)
    return out


def geometric(first: int, last: int, per_octave: int) -> list[int]:
    """Integers from ``first`` to at least ``last``, ``per_octave`` steps per doubling
    (duplicates from rounding dropped)."""
    out: list[int] = []
    k = 0
    while not out or out[-1] < last:
        value = round(first * 2 ** (k / per_octave))
        if not out or value > out[-1]:
            out.append(value)
        k += 1
    return out
