"""One searchable parameter: a fixed value, a list of choices, or a range (min, max, step).

A bare YAML scalar means a fixed value (one choice). Ranges are inclusive; an integer range
steps by 1 unless told; a float range without ``step`` is continuous (Optuna samples it, a
grid cannot enumerate it).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

StrictInt = Annotated[int, Field(strict=True)]
# strict float still accepts an int; .nan/.inf would fail every point they reach
StrictFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _scalar_as_choice(value: Any) -> Any:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"choices": [value]}
    return value


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def _check_shape(self) -> None:
        raw = self.model_dump(exclude_none=True, exclude_defaults=True)
        if self.choices is not None:  # type: ignore[attr-defined]
            extra = sorted(set(raw) - {"choices"})
            if extra:
                raise ValueError(f"got {raw!r}; expected either choices or min/max, not both")
            if not self.choices:  # type: ignore[attr-defined]
                raise ValueError(f"got {raw!r}; expected at least one choice (empty range)")
            return
        if getattr(self, "min", None) is None or getattr(self, "max", None) is None:
            raise ValueError(f"got {raw!r}; expected choices: [...] or both min and max")
        if self.min > self.max:  # type: ignore[attr-defined]
            raise ValueError(f"got {raw!r}; expected min <= max (empty range)")
        step = getattr(self, "step", None)
        if step is not None and step <= 0:
            raise ValueError(f"got {raw!r}; expected a positive step")
        if getattr(self, "log", False) and self.min <= 0:  # type: ignore[attr-defined]
            raise ValueError(f"got {raw!r}; expected min > 0 for a log range")

    @property
    def is_choice(self) -> bool:
        return self.choices is not None  # type: ignore[attr-defined]

    def grid_values(self, where: str) -> list[Any]:
        """Every value a grid visits, in order."""
        if self.is_choice:
            return list(dict.fromkeys(self.choices))  # type: ignore[attr-defined]
        return self._range_values(where)

    def _range_values(self, where: str) -> list[Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def count(self, where: str) -> int:
        """len(grid_values(where)), computed without enumerating the values (a range of
        10^12 would not fit in memory); ValueError where a grid cannot enumerate it."""
        if self.is_choice:
            return len(dict.fromkeys(self.choices))  # type: ignore[attr-defined]
        return self._range_count(where)

    def _range_count(self, where: str) -> int:  # pragma: no cover - overridden
        raise NotImplementedError


class IntParam(_Param):
    choices: list[StrictInt] | None = None
    min: StrictInt | None = None
    max: StrictInt | None = None
    step: StrictInt = 1
    log: StrictBool = False

    @model_validator(mode="after")
    def _valid(self) -> IntParam:
        self._check_shape()
        if self.choices and min(self.choices) <= 0 or self.min is not None and self.min <= 0:
            raise ValueError(f"got {self.model_dump(exclude_none=True)!r}; expected positive "
                             "integers")
        return self

    def _range_values(self, where: str) -> list[int]:
        if self.log:
            raise ValueError(f"{where}: a log range cannot be enumerated by a grid; "
                             "expected choices or a linear range")
        return list(range(self.min, self.max + 1, self.step))  # type: ignore[arg-type]

    def _range_count(self, where: str) -> int:
        if self.log:
            self._range_values(where)  # raises the grid's error
        return len(range(self.min, self.max + 1, self.step))  # type: ignore[arg-type]


class FloatParam(_Param):
    choices: list[StrictFloat] | None = None
    min: StrictFloat | None = None
    max: StrictFloat | None = None
    step: StrictFloat | None = None
    log: StrictBool = False

    @model_validator(mode="after")
    def _valid(self) -> FloatParam:
        self._check_shape()
        if self.choices and min(self.choices) <= 0 or self.min is not None and self.min <= 0:
            raise ValueError(f"got {self.model_dump(exclude_none=True)!r}; expected positive "
                             "numbers")
        return self

    def _range_values(self, where: str) -> list[float]:
        if self.step is None or self.log:
            raise ValueError(f"{where}: a continuous range (no step) cannot be enumerated by a "
                             "grid; expected a step or choices")
        n = math.floor((self.max - self.min) / self.step + 1e-9)  # type: ignore[operator]
        return [round(self.min + i * self.step, 12) for i in range(n + 1)]  # type: ignore

    def _range_count(self, where: str) -> int:
        if self.step is None or self.log:
            self._range_values(where)  # raises the grid's error
        return math.floor((self.max - self.min) / self.step + 1e-9) + 1  # type: ignore


class StrParam(_Param):
    choices: list[str] | None = None

    @model_validator(mode="after")
    def _valid(self) -> StrParam:
        if self.choices is None:
            raise ValueError(f"got {self.model_dump()!r}; expected choices: [...]")
        if not self.choices:
            raise ValueError("got {'choices': []}; expected at least one choice (empty range)")
        return self


Int = Annotated[IntParam, BeforeValidator(_scalar_as_choice)]
Float = Annotated[FloatParam, BeforeValidator(_scalar_as_choice)]
Str = Annotated[StrParam, BeforeValidator(_scalar_as_choice)]
