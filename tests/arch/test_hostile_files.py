"""Hostile spec files fail fast with one line: aliases, encodings, binary, nesting."""

from __future__ import annotations

import time

import pytest

from chipforge.arch import load_chip
from chipforge.errors import SpecError

# the 351-byte "billion laughs": 9 levels of 9 aliases expand to 9^9 strings
LAUGHS = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"{n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, n in zip("abcdefgh", "bcdefghi"))


def _error(tmp_path, data: bytes) -> str:
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with pytest.raises(SpecError) as err:
        load_chip(path)
    return str(err.value).removeprefix(f"{path}: ")


def test_billion_laughs_is_refused_at_the_first_alias(tmp_path):
    start = time.perf_counter()
    message = _error(tmp_path, LAUGHS.encode())
    assert time.perf_counter() - start < 5  # it ran > 60 s at 1.5 GB before
    assert message == ("YAML syntax error at line 2, column 8: alias *a is not allowed; "
                       "write the value out (aliases can expand a small file to gigabytes)")


@pytest.mark.parametrize(("data", "message"), [
    ("name: x\n".encode("utf-16"), "the file is UTF-16 text; expected UTF-8"),
    (b"name: caf\xe9\n", "byte 0xe9 at offset 9 is not UTF-8; expected a UTF-8 text file"),
    (b"name: x\x00\x01\n", "the file holds NUL bytes (binary data); expected UTF-8 text"),
    (b"a: " + b"[" * 100_000 + b"]" * 100_000,
     "YAML syntax error at line 1, column 67: nested deeper than 64 levels"),
])
def test_undecodable_or_deep_files_give_one_line(tmp_path, data, message):
    assert _error(tmp_path, data) == message


def test_a_directory_is_not_a_spec(tmp_path):
    with pytest.raises(SpecError, match=r"is a directory; expected a chip spec YAML file"):
        load_chip(tmp_path)


def test_a_deep_dict_from_python_is_one_error():
    from chipforge.arch import spec_from_dict

    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["name"] = {}
        node = node["name"]
    with pytest.raises(SpecError, match=r"^<spec>: nested too deeply; expected a chip spec "
                                        r"mapping$"):
        spec_from_dict(deep)
