"""Engineering notation and ratios as the report prints them (hand-derived strings)."""

import math

import pytest

from chipforge.report._format import eng, ratio


@pytest.mark.parametrize(("value", "unit", "text"), [
    (4.68e5 * 1e-3, "s", "468 s"),            # the "4.68e+05 ms"
    (1.81e-4, "s", "181 µs"),
    (2240.0, "tokens/s", "2.24 k tokens/s"),  # counted things keep the prefix apart
    (91_500.0, "J", "91.5 kJ"),               # SI units take it
    (5.12e16, "FLOP", "51.2 PFLOP"),
    (3.35e12, "B/s", "3.35 TB/s"),
    (999.7, "J", "1 kJ"),                     # rounding carries into the next prefix
    (0.5, "tokens/J", "0.5 tokens/J"),        # no milli-tokens
    (0.0, "s", "0 s"),
    (-2500.0, "W", "-2.5 kW"),
    (12.0, "", "12"),
])
def test_eng(value, unit, text):
    assert eng(value, unit) == text


@pytest.mark.parametrize("value", [None, math.nan, math.inf])
def test_eng_has_no_number_for_what_is_not_one(value):
    assert eng(value, "s") == "-"


@pytest.mark.parametrize(("value", "text"), [
    (1.04, "1.0×"), (0.234, "0.23×"), (3.56, "3.6×"), (12.6, "13×"), (None, "-"),
])
def test_ratio(value, text):
    assert ratio(value) == text
