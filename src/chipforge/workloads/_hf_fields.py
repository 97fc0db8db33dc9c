"""Typed reads of Hugging Face ``config.json`` fields, each failure one WorkloadError line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chipforge.errors import WorkloadError

_MISSING = object()

# torch dtype names (v4 ``torch_dtype``, v5 ``dtype``) -> chipforge dtype names
TORCH_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32",
                "float": "fp32", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read file ({exc.strerror or exc}); "
                            "expected a Hugging Face config.json") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{path.name}: invalid JSON at line {exc.lineno} column "
                            f"{exc.colno} ({exc.msg}); expected a config.json object") from None
    if not isinstance(data, dict):
        raise WorkloadError(f"{path.name}: top level is {type(data).__name__}; "
                            "expected a JSON object")
    return data


class Fields:
    """Reads fields of one config dict; ``src`` names the file in every error."""

    def __init__(self, data: dict[str, Any], src: str) -> None:
        self.data = data
        self.src = src

    def _read(self, key: str, default: Any, expected: str, ok: Callable[[Any], bool]) -> Any:
        value = self.data.get(key)
        if value is None:  # HF writes unset optionals as null
            if default is _MISSING:
                raise WorkloadError(f"{self.src}: missing field {key!r} (expected {expected})")
            return default
        if not ok(value):
            raise WorkloadError(f"{self.src}: field {key!r} is {value!r}; expected {expected}")
        return value

    def integer(self, key: str, default: Any = _MISSING, low: int = 1) -> Any:
        what = "a positive int" if low == 1 else f"an int >= {low}"
        return self._read(key, default, what, lambda v: _is_int(v) and v >= low)

    def number(self, key: str, default: Any = _MISSING) -> Any:
        value = self._read(key, default, "a number", lambda v: _is_int(v) or isinstance(v, float))
        return value if value is default else float(value)

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        return self._read(key, default, "true or false", lambda v: isinstance(v, bool))

    def text(self, key: str, default: Any = _MISSING) -> Any:
        return self._read(key, default, "a string", lambda v: isinstance(v, str))

    def mapping(self, key: str) -> dict[str, Any] | None:
        return self._read(key, None, "an object", lambda v: isinstance(v, dict))

    def int_list(self, key: str) -> tuple[int, ...]:
        value = self._read(key, [], "a list of ints",
                           lambda v: isinstance(v, list) and all(_is_int(x) for x in v))
        return tuple(value)

    def dtype(self) -> str:
        """v5 ``dtype`` or v4 ``torch_dtype``; bf16 when neither is set."""
        key = "dtype" if self.data.get("dtype") is not None else "torch_dtype"
        value = self.text(key, "bfloat16")
        if value not in TORCH_DTYPES:
            raise WorkloadError(f"{self.src}: field {key!r} is {value!r}; expected one of "
                                f"{', '.join(TORCH_DTYPES)}")
        return TORCH_DTYPES[value]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def freeze(value: Any) -> Any:
    """A hashable copy of a JSON value (dicts -> sorted item tuples, lists -> tuples)."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value
