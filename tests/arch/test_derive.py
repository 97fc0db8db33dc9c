"""derive_chip: a modified spec is re-validated and keys the estimate cache correctly."""

import pytest

from chipforge.arch import derive_chip, load_chip
from chipforge.errors import SpecError
from chipforge.ops import Matmul
from chipforge.perf import estimate


def test_no_changes_gives_an_equal_spec_with_its_sources():
    chip = load_chip("h100-sxm")
    same = derive_chip(chip, {})
    assert same == chip and same.sources == chip.sources


def test_changes_accept_units_or_si_numbers_and_nested_keys():
    chip = load_chip("h100-sxm")
    a = derive_chip(chip, {"clock": "1.2 GHz", "cores": {"count": 100}}, name="h100-slow")
    b = derive_chip(chip, {"clock": 1.2e9, "cores": {"count": 100}}, name="h100-slow")
    assert a == b and a.name == "h100-slow"
    assert a.cores.count == 100 and a.clock_hz == 1.2e9
    # untouched nested fields survive the merge
    assert a.cores.matrix_units == chip.cores.matrix_units


def test_derived_chip_is_estimated_at_its_own_clock():
    chip = load_chip("forge-t1")
    half = derive_chip(chip, {"clock": chip.clock_hz / 2})
    op = Matmul(m=8192, n=8192, k=8192, dtype="bf16")
    # a compute-bound GEMM takes longer at half the clock (the cache must not reuse `chip`)
    assert estimate(op, half).seconds > 1.5 * estimate(op, chip).seconds


def test_bad_change_names_the_field_and_the_origin():
    with pytest.raises(SpecError, match=r"^derived from 'h100-sxm': cores\.count: got -1; "
                                        r"expected a positive integer$"):
        derive_chip(load_chip("h100-sxm"), {"cores": {"count": -1}})
