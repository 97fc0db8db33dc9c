"""Piecewise-linear tables: the serving step cost's precomputed curves (kept out of the
event loop's way: one lookup is a bisection and a few multiplications)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def _slopes(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, ...]:
    return tuple((ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(len(xs) - 1))


@dataclass(frozen=True)
class Curve:
    """``y(x)`` sampled at ``xs`` (increasing, at least two), linear between samples and
    along the end segments outside them."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    slopes: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slopes", _slopes(self.xs, self.ys))

    @classmethod
    def sample(cls, fn: Callable[[float], float], xs: Sequence[float]) -> Curve:
        return cls(tuple(float(x) for x in xs), tuple(float(fn(x)) for x in xs))

    def __call__(self, x: float) -> float:
        xs = self.xs
        # the segment holding x, clamped to the first/last so outside values extrapolate
        i = bisect_right(xs, x, 1, len(xs) - 1) - 1
        return self.ys[i] + (x - xs[i]) * self.slopes[i]


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
        xs, ys, z = self.xs, self.ys, self.zs
        i = bisect_right(xs, x, 1, len(xs) - 1) - 1
        j = bisect_right(ys, y, 1, len(ys) - 1) - 1
        t = (x - xs[i]) / (xs[i + 1] - xs[i])
        u = (y - ys[j]) / (ys[j + 1] - ys[j])
        low, high = z[i], z[i + 1]
        a = low[j] + u * (low[j + 1] - low[j])
        return a + t * (high[j] + u * (high[j + 1] - high[j]) - a)


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
