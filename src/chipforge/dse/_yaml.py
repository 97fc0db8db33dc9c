"""Read a DSE YAML file and turn pydantic errors into one line: file, field path, value,
what was expected."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chipforge.arch import parse_yaml, read_text
from chipforge.dse._errors import DseError


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file, or a DseError naming the file."""
    if Path(path).is_dir():
        raise DseError(f"{path}: is a directory; expected a {what} YAML file")
    # untrusted text: no aliases (billion laughs), bounded size and nesting, UTF-8 only
    raw = parse_yaml(read_text(path, str(path), what, DseError), str(path), DseError)
    if raw is None:
        raise DseError(f"{path}: the file is empty; expected a mapping of {what} fields")
    if not isinstance(raw, dict):
        raise DseError(f"{path}: got {type(raw).__name__} at the top level; expected a mapping "
                       f"of {what} fields")
    return raw


def field_path(loc: tuple) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


_TYPE_WORDS = {"int_type": "an integer", "int_parsing": "an integer", "int_from_float":
               "an integer", "float_type": "a number", "float_parsing": "a number",
               "bool_type": "true or false", "bool_parsing": "true or false",
               "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
               "model_type": "a mapping", "model_attributes_type": "a mapping"}


_SUBFIELD = re.compile(r"^([A-Za-z_\[][\w.\[\]]*): (got .*)$", re.S)


def describe(exc: ValidationError, where: str) -> str:
    """The first validation error as ``where: path: got VALUE; expected ...``."""
    err = exc.errors()[0]
    path, kind, value = field_path(err["loc"]), err["type"], err.get("input")
    if kind == "missing":
        msg = "missing required field; expected it (see docs/dse.md)"
    elif kind == "extra_forbidden":
        msg = f"unknown field (value {value!r}); expected a field listed in docs/dse.md"
    elif kind == "literal_error":
        msg = f"got {value!r}; expected one of {err['ctx']['expected']}"
    elif kind == "value_error":
        msg = str(err["ctx"]["error"])
        # a validator may name a field below its own: "choices[1]: got ..."
        sub = _SUBFIELD.match(msg)
        if sub:
            sep = "" if sub[1].startswith("[") else "."
            path = sub[1] if path == "<top level>" else f"{path}{sep}{sub[1]}"
            msg = sub[2]
    elif kind in _TYPE_WORDS:
        msg = f"got {value!r}; expected {_TYPE_WORDS[kind]}"
    elif kind in ("greater_than", "greater_than_equal"):
        msg = f"got {value!r}; expected a positive number"
    else:
        msg = f"got {value!r}; {err['msg'][0].lower()}{err['msg'][1:]}"
    return f"{where}: {path}: {msg}"
