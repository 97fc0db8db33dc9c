"""Op strings: ``"matmul m=4096 n=4096 k=4096 dtype=bf16"`` -> :class:`Matmul`."""

from __future__ import annotations

import re
from dataclasses import fields

from chipforge.arch import DTYPES
from chipforge.errors import OpSyntaxError
from chipforge.ops._ir import OP_CLASSES, Op
from chipforge.ops._moe import MoE

OP_FORM = "'KIND key=value ...', e.g. 'matmul m=4096 n=4096 k=4096 dtype=bf16'"
# the fused MoE layer lives in its own module (ops/_moe.py)
_CLASSES: dict[str, type[Op]] = {**OP_CLASSES, MoE.kind.value: MoE}
_INT = re.compile(r"[+-]?[0-9][0-9_]*")  # ASCII digits only: int() also reads '٤٠٩٦'

# dimensions that only mean something together: give all of a group or none of it (none
# is the unit op, every size 1); a partial group would silently size the rest 1
_TOGETHER: dict[str, tuple[str, ...]] = {
    "matmul": ("m", "n", "k"),
    "conv2d": ("in_ch", "out_ch", "h", "w", "kh", "kw"),
    "attention": ("q_len", "kv_len"),
    "reduce": ("rows", "cols"), "softmax": ("rows", "cols"), "layernorm": ("rows", "cols"),
    "rmsnorm": ("rows", "cols"),
    "embedding_bag": ("num_embeddings", "dim"),
}


def _convert(kind: str, key: str, text: str, annotation: str) -> object:
    if annotation == "int":
        if not _INT.fullmatch(text):
            raise OpSyntaxError(f"op {kind!r}: {key}={text!r} is not an integer")
        return int(text.replace("_", ""))
    if annotation == "bool":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise OpSyntaxError(f"op {kind!r}: {key}={text!r} is not true or false")
    return text


def parse_op(text: str) -> Op:
    """Read one op string; every error says what was expected."""
    words = text.split()
    if not words:
        raise OpSyntaxError(f"empty op string; expected {OP_FORM}")
    kind, args = words[0].lower(), words[1:]
    if kind not in _CLASSES:
        raise OpSyntaxError(f"unknown op kind {kind!r} in {text!r}; expected one of "
                            f"{', '.join(_CLASSES)}")
    cls = _CLASSES[kind]
    known = {f.name: f.type for f in fields(cls) if f.init}
    values: dict[str, object] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key or not value:
            raise OpSyntaxError(f"malformed argument {arg!r} in {text!r}; expected {OP_FORM}")
        if key not in known:
            raise OpSyntaxError(f"op {kind!r} has no argument {key!r}; expected some of "
                                f"{', '.join(k for k in known if k != 'name')}")
        if key in values:
            raise OpSyntaxError(f"op {kind!r}: argument {key!r} is given twice in {text!r}")
        if key == "dtype" and value not in DTYPES:
            raise OpSyntaxError(f"op {kind!r}: unknown dtype {value!r}; expected one of "
                                f"{', '.join(DTYPES)}")
        values[key] = _convert(kind, key, value, str(known[key]))
    op = cls(**values)  # each value's own check first
    group = _TOGETHER.get(kind, ())
    given = [k for k in group if k in values]
    if given and len(given) < len(group):
        missing = [k for k in group if k not in values]
        raise OpSyntaxError(f"op {kind!r}: {', '.join(missing)} missing in {text!r}; expected "
                            f"{', '.join(group)} together (none of them: the unit op), not "
                            f"a default of 1")
    return op
