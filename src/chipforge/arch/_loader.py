"""Load chip specs from YAML: catalog names or paths, with one-line errors.

A number in a spec may be written bare, or as ``{value: ..., source: ...}`` /
``{value: ..., assumption: ...}``. The wrapper is stripped before validation and the
source is kept in ``ChipSpec.sources`` under the field path.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chipforge.arch._safe_yaml import parse_yaml, read_text
from chipforge.arch._spec import DTYPES, ChipSpec, DerivedMismatch
from chipforge.errors import SpecError

_PROVENANCE_KEYS = ("source", "assumption")


def catalog_names() -> list[str]:
    """Names of the chips that ship with chipforge, sorted."""
    folder = resources.files("chipforge.arch") / "catalog"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def catalog_path(name: str) -> Path:
    return Path(str(resources.files("chipforge.arch") / "catalog" / f"{name}.yaml"))


def load_chip(name_or_path: str | Path) -> ChipSpec:
    """A chip from the catalog by name (``"h100-sxm"``) or from a YAML file path."""
    text = str(name_or_path)
    if text in catalog_names():
        return _load_catalog(text)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_spec_file(path)
    raise SpecError(f"unknown chip {text!r}; expected a spec file path or one of: "
                    f"{', '.join(catalog_names())}")


@functools.cache
def _load_catalog(name: str) -> ChipSpec:
    return load_spec_file(catalog_path(name))


def load_spec_file(path: Path) -> ChipSpec:
    where = str(path)
    if Path(path).is_dir():
        raise SpecError(f"{where}: is a directory; expected a chip spec YAML file")
    raw = read_yaml(read_text(path, where, "spec", SpecError), where)
    return spec_from_dict(raw, where)


def read_yaml(text: str, where: str) -> Any:
    """Parse untrusted YAML: no aliases, bounded nesting, one-line errors."""
    return parse_yaml(text, where, SpecError)


def spec_from_dict(raw: Any, where: str = "<spec>") -> ChipSpec:
    if raw is None:
        raise SpecError(f"{where}: the file is empty; expected a mapping of spec fields")
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping of spec fields at the top level, "
                        f"got {type(raw).__name__}")
    try:
        clean, sources, _ = unwrap_provenance(raw)
        return ChipSpec.model_validate({**clean, "sources": sources})
    except ValidationError as exc:
        raise SpecError(f"{where}: {describe_error(exc)}") from None
    except RecursionError:  # a dict built in Python, not through the depth-checked reader
        raise SpecError(f"{where}: nested too deeply; expected a chip spec mapping") from None


def derive_chip(chip: ChipSpec, changes: dict[str, Any], *, name: str | None = None,
                sources: dict[str, str] | None = None) -> ChipSpec:
    """A new validated spec: ``chip`` with ``changes`` deep-merged in.

    ``changes`` uses the YAML keys (``clock``, ``cores: {count: ...}``) with values either
    in YAML form (``"1.2 GHz"``) or as SI numbers (``1.2e9``). Use this, never
    ``model_copy``: specs key the estimate cache by a fingerprint computed at validation.
    A stated ``die_area`` or ``transistors`` count is dropped (predicted by chipforge.cost
    instead) when the changes alter the silicon without stating a new one, and a
    description the changes make wrong is regenerated. A systolic array's
    ``macs_per_cycle`` must still equal rows x cols x packing: change them together.
    """
    raw = _merge(chip.model_dump(by_alias=True), changes)
    if name is not None:
        raw["name"] = name
    merged_sources = {**chip.sources, **(sources or {})}
    where = f"derived from {chip.name!r}"
    keep_area = "die_area" in changes or chip.die_area_mm2 is None
    derived = _validate_derived(raw, merged_sources, where, keep_area)
    # a stated die area or transistor count is the stated silicon's: when the silicon
    # changes it no longer holds, and chipforge.cost's prediction takes over (unless the
    # change states a new one)
    if _silicon(derived) != _silicon(chip):
        stale = [key for key in _STATED_SILICON if key not in changes and raw.get(key)]
        if stale:
            raw, merged_sources = _without(raw, merged_sources, stale)
            derived = _validate_derived(raw, merged_sources, where, True)
    return derived


# what a spec states about its silicon as built (YAML keys), true only of that silicon
_STATED_SILICON = ("die_area", "transistors")


def _without(raw: dict[str, Any], sources: dict[str, str],
             keys: list[str] | tuple[str, ...]) -> tuple[dict, dict]:
    return ({**raw, **dict.fromkeys(keys)},
            {k: v for k, v in sources.items() if k not in keys})


def _validate_derived(raw: dict[str, Any], sources: dict[str, str], where: str,
                      keep_area: bool) -> ChipSpec:
    try:
        return ChipSpec.model_validate({**raw, "sources": sources},
                                       context={"si_numbers": True})
    except ValidationError as exc:
        first = exc.errors()[0]
        sub = getattr(first.get("ctx", {}).get("error"), "sub", "") if first["loc"] == () \
            else ""
        if sub == "description" and raw.get("description"):
            # the base's description no longer fits the derived chip: generate one
            return _validate_derived({**raw, "description": ""}, sources, where, keep_area)
        if sub == "die_area" and not keep_area:
            # the base's stated area cannot hold the derived silicon: predict it instead
            return _validate_derived(*_without(raw, sources, ("die_area",)), where, True)
        raise SpecError(f"{where}: {describe_error(exc)}") from None


# fields that do not describe the silicon, so the die area does not depend on them
_NOT_SILICON = ("name", "vendor", "description", "clock_hz", "tdp_w", "die_area_mm2",
                "transistor_count", "launch_price_usd")


def _silicon(chip: ChipSpec) -> dict[str, Any]:
    dump = chip.model_dump(by_alias=True, exclude=set(_NOT_SILICON))
    dump["cores"]["count"] = chip.cores.physical  # disabled cores are on the die too
    dump["cores"].pop("physical_count")
    for key in ("capacity", "bandwidth"):  # the PHYs, not the memory parts, are on the die
        dump["memory"].pop(key)
    dump["shared_buffer"].pop("bandwidth")
    return dump


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def unwrap_provenance(node: Any, path: str = "") -> tuple[Any, dict[str, str], list[str]]:
    """Strip ``{value, source|assumption}`` wrappers.

    Returns the plain tree, the provenance of each wrapped field, and the paths of numeric
    leaves that carry none (the catalog test requires that list to be empty).
    """
    if isinstance(node, dict):
        if "value" in node and set(node) - {"value"} <= set(_PROVENANCE_KEYS) and len(node) == 2:
            key = next(k for k in node if k != "value")
            return node["value"], {path: f"{key}: {node[key]}"}, []
        out, sources, bare = {}, {}, []
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            out[key], s, b = unwrap_provenance(value, sub)
            sources.update(s)
            bare += b
        return out, sources, bare
    if isinstance(node, list):
        out, sources, bare = [], {}, []
        for i, value in enumerate(node):
            v, s, b = unwrap_provenance(value, f"{path}[{i}]")
            out.append(v)
            sources.update(s)
            bare += b
        return out, sources, bare
    is_number = isinstance(node, (int, float)) and not isinstance(node, bool)
    is_quantity = isinstance(node, str) and node[:1].isdigit()
    return node, {}, [path] if (is_number or is_quantity) else []


# what a missing field should hold, by its YAML name
_EXPECTED = {
    "clock": "a frequency with a unit, like '1.41 GHz'",
    "tdp": "a power with a unit, like '400 W'",
    "size": "a size with a unit, like '40 MiB'",
    "capacity": "a size with a unit, like '80 GB'",
    "bandwidth": "a bandwidth with a unit, like '2039 GB/s'",
    "count": "a positive integer",
    "bytes_per_cycle": "a positive integer",
    "lanes": "a positive integer",
    "rows": "a positive integer",
    "cols": "a positive integer",
    "macs_per_cycle": f"a mapping of dtype to MACs per cycle, dtypes: {', '.join(DTYPES)}"
                      " (a systolic array may give `packing` instead)",
}


def _format_loc(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe_error(exc: ValidationError) -> str:
    """The first validation error as one line: field path, value, what was expected."""
    errors = exc.errors()
    err = errors[0]
    loc = tuple(p for p in err["loc"] if p != "[key]")
    field = _format_loc(loc) or "<top level>"
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        hint = _EXPECTED.get(str(loc[-1]), "see docs/arch.md for the field")
        msg = f"{field}: missing required field; expected {hint}"
    elif kind == "extra_forbidden":
        msg = f"{field}: unknown field (value {value!r})"
    elif "[key]" in err["loc"] and loc[-2:-1] == ("macs_per_cycle",) or (
            kind == "literal_error" and loc and loc[-2:-1] == ("dtypes",)):
        msg = f"{field}: unknown dtype {value!r}; expected one of {', '.join(DTYPES)}"
    elif kind == "literal_error":
        msg = f"{field}: got {value!r}; expected one of {err['ctx']['expected']}"
    elif kind == "value_error" and isinstance(err["ctx"]["error"], DerivedMismatch):
        cause = err["ctx"]["error"]
        field = _format_loc((*loc[:-1], *cause.sub.split(".")))
        msg = f"{field}: {cause}"
    elif kind == "value_error":
        msg = f"{field}: {str(err['ctx']['error'])} (got {value!r})"
    elif kind in ("greater_than", "greater_than_equal"):
        what = "integer" if isinstance(value, int) else "number"
        msg = f"{field}: got {value!r}; expected a positive {what}"
    elif kind == "less_than_equal":
        msg = f"{field}: got {value!r}; expected at most {err['ctx']['le']!r}"
    else:
        msg = f"{field}: got {value!r}; {err['msg'][0].lower()}{err['msg'][1:]}"
    # errors inside the first one's field are its follow-ons (a rejected union member, an
    # emptied list); only independent ones are worth counting
    more = sum(1 for e in errors[1:] if e["loc"][:len(loc)] != loc and loc[:len(e["loc"])]
               != tuple(e["loc"]))
    return msg + (f" (and {more} more error{'s' * (more > 1)})" if more else "")
