"""Read untrusted YAML and JSON text in bounded time and memory, with one-line errors.

Spec, DSE and program files come from users: a 351-byte "billion laughs" document of
nested aliases expands to gigabytes, a deeply nested one overflows the recursive
composer, and UTF-16 or binary files fail inside the decoder. Each is refused here,
before any value is built, with a message naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, CollectionStartEvent

# assumption: the largest shipped YAML (a chip spec with provenance) is ~6 KB and the
# largest program.json a few MB; 16 MiB and 64 levels leave room without letting
# a hostile file hold the process
MAX_TEXT_BYTES = 16 * 2**20
MAX_DEPTH = 64


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``) and nesting beyond MAX_DEPTH."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"alias *{event.anchor} is not allowed; write the value out "
                "(aliases can expand a small file to gigabytes)", event.start_mark)
        nested = self.check_event(CollectionStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        try:
            return Composer.compose_node(self, parent, index)
        finally:
            if nested:
                self._depth -= 1


def decode_text(data: bytes, where: str, error: Callable[[str], Exception]) -> str:
    """``data`` as UTF-8 text, or ``error`` naming what it is instead."""
    if len(data) > MAX_TEXT_BYTES:
        raise error(f"{where}: file of {len(data):,} bytes; expected a text file under "
                    f"{MAX_TEXT_BYTES // 2**20} MiB")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise error(f"{where}: the file is UTF-16 text; expected UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where}: byte 0x{data[exc.start]:02x} at offset {exc.start} is not "
                    f"UTF-8; expected a UTF-8 text file") from None
    if "\x00" in text:
        raise error(f"{where}: the file holds NUL bytes (binary data); expected UTF-8 text")
    return text.removeprefix("\ufeff")


def read_text(path: str | Path, where: str, what: str,
              error: Callable[[str], Exception]) -> str:
    """The UTF-8 text of the file at ``path`` (bounded in size)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TEXT_BYTES + 1)
    except OSError as exc:
        raise error(f"{where}: cannot read {what} file: {exc.strerror}") from None
    return decode_text(data, where, error)


def parse_yaml(text: str, where: str, error: Callable[[str], Exception]) -> Any:
    """Safe-load YAML without aliases or deep nesting; syntax errors as one line."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{where}: YAML syntax error{at}: {problem}") from None
    except RecursionError:  # the depth guard should have caught it; never a traceback
        raise error(f"{where}: nested too deeply; expected at most {MAX_DEPTH} levels") \
            from None


def parse_json(text: str | bytes, where: str, error: Callable[[str], Exception]) -> Any:
    """JSON from untrusted text: one line for syntax, encoding or nesting errors."""
    if isinstance(text, bytes):
        text = decode_text(text, where, error)
    if _json_depth(text) > MAX_DEPTH:
        raise error(f"{where}: nested deeper than {MAX_DEPTH} levels; expected at most "
                    f"{MAX_DEPTH}")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: JSON syntax error at line {exc.lineno}, column {exc.colno}: "
                    f"{exc.msg}") from None
    except ValueError as exc:
        raise error(f"{where}: {exc}") from None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number; expected finite numbers only")


def _json_depth(text: str) -> int:
    """The deepest bracket nesting, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest
