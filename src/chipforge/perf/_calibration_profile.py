"""Calibration profiles: the fitted shared parameters of one chip, with where they came
from, as a YAML file that ``--calibration`` and :func:`load_calibration` read back, every
field checked."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from chipforge.arch import parse_yaml, read_text
from chipforge.errors import ChipforgeError
from chipforge.machine import Efficiency

# what a profile may hold. assumption: fractions of a peak lie in (0, 1]; a fixed cost or
# latency above 1 ms is no launch or hop latency of any GPU or accelerator (they are us)
PROFILE_BOUNDS = {"clock_fraction": (0.0, 1.0), "dram_efficiency": (0.0, 1.0),
                  "link_efficiency": (0.0, 1.0), "launch_overhead_s": (0.0, 1e-3),
                  "pipeline_latency_s": (0.0, 1e-3), "link_latency_s": (0.0, 1e-3)}
PROFILE_VERSION = 1


class CalibrationError(ChipforgeError):
    """A measured table or a calibration profile that cannot be used."""


@dataclass(frozen=True)
class CalibrationProfile:
    path: str
    chip: str
    efficiency: Efficiency
    document: dict[str, Any]

    def describe(self) -> str:
        return f"{self.path} (fitted on {self.chip})"


def write_profile(result: Any, path: Path) -> Path:
    """Write ``result.profile()`` (a :class:`CalibrationResult`'s document) to ``path``."""
    path = Path(path)
    text = ("# chipforge calibration profile (chipforge calibrate); load with "
            "--calibration\n" + yaml.safe_dump(result.profile(), sort_keys=False))
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot write the profile: {exc.strerror}") from None
    return path


def efficiency_from_dict(values: Any, where: str) -> Efficiency:
    """An :class:`Efficiency` from a mapping of all its fields, each checked."""
    names = [f.name for f in fields(Efficiency)]
    if not isinstance(values, dict):
        raise CalibrationError(f"{where}: 'efficiency' is {type(values).__name__}; expected "
                               f"a mapping of {', '.join(names)}")
    for key in values:
        if key not in names:
            raise CalibrationError(f"{where}: unknown field efficiency.{key}; expected one "
                                   f"of {', '.join(names)}")
    checked = {}
    for name in names:
        low, high = PROFILE_BOUNDS[name]
        want = f"a number in ({low:g}, {high:g}]" if low == 0 and high == 1 \
            else f"a number of seconds in [{low:g}, {high:g}]"
        if name not in values:
            raise CalibrationError(f"{where}: efficiency.{name} is missing; expected {want}")
        value = values[name]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value)
        in_range = ok and (low < value <= high if high == 1 else low <= value <= high)
        if not in_range:
            raise CalibrationError(f"{where}: efficiency.{name} is {value!r}; expected {want}")
        checked[name] = float(value)
    return Efficiency(**checked)


_PROFILE_KEYS = ("chipforge_calibration", "chip", "efficiency", "fitted_on", "residuals")


def read_profile(path: Path | str) -> CalibrationProfile:
    """A calibration profile, every field checked; one :class:`CalibrationError` naming the
    file, the field, the value and what was expected otherwise."""
    where = str(path)
    doc = parse_yaml(read_text(path, where, "calibration profile", CalibrationError), where,
                     CalibrationError)
    if not isinstance(doc, dict):
        raise CalibrationError(f"{where}: the profile is {type(doc).__name__}; expected a "
                               f"mapping with {', '.join(_PROFILE_KEYS)}")
    for key in doc:
        if key not in _PROFILE_KEYS:
            raise CalibrationError(f"{where}: unknown field {key!r}; expected one of "
                                   f"{', '.join(_PROFILE_KEYS)}")
    version = doc.get("chipforge_calibration")
    if version != PROFILE_VERSION:
        raise CalibrationError(f"{where}: chipforge_calibration is {version!r}; expected "
                               f"{PROFILE_VERSION} (a profile written by chipforge calibrate)")
    chip = doc.get("chip")
    if not isinstance(chip, str) or not chip:
        raise CalibrationError(f"{where}: chip is {chip!r}; expected the chip name it was "
                               "fitted on")
    return CalibrationProfile(where, chip, efficiency_from_dict(doc.get("efficiency"), where),
                              doc)


def load_calibration(path: Path | str) -> Efficiency:
    """The :class:`Efficiency` of a calibration profile, for ``estimate(..., eff=...)``."""
    return read_profile(path).efficiency
