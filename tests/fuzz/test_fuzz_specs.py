"""Fuzzed chip specs: mutated catalog YAML (text and bytes), random trees and random
derive_chip changes. Each loads into a consistent spec or fails with one SpecError line,
in bounded time; the module's memory growth is bounded."""

from __future__ import annotations

import math
import random

import pytest
from fuzzkit import (
    MODULE_RSS_GROWTH_BYTES,
    check_case,
    max_rss_bytes,
    mutate_bytes,
    mutate_text,
    random_tree,
)

from chipforge.arch import DTYPES, ChipSpec, catalog_names, derive_chip, load_chip, spec_from_dict
from chipforge.arch._loader import catalog_path
from chipforge.errors import SpecError

NAMES = catalog_names()
TEXTS = {n: catalog_path(n).read_text() for n in NAMES}


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    before = max_rss_bytes()
    yield
    assert max_rss_bytes() - before < MODULE_RSS_GROWTH_BYTES


def _consistent(chip: ChipSpec) -> None:
    """What any accepted spec must satisfy, re-derived here from the fields."""
    for value in (chip.clock_hz, chip.tdp_w, chip.memory.capacity_bytes,
                  chip.memory.bandwidth_bytes_per_s, chip.shared_buffer.size_bytes):
        assert math.isfinite(value) and value > 0
    for dtype in DTYPES:
        assert math.isfinite(chip.peak_flops(dtype)) and chip.peak_flops(dtype) >= 0
    for unit in chip.cores.matrix_units:
        if unit.kind == "systolic" and unit.packing is not None:
            for dtype, macs in unit.macs_per_cycle.items():
                assert macs == unit.rows * unit.cols * unit.packing[dtype]


@pytest.mark.parametrize("seed", range(120))
def test_mutated_spec_text(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "spec.yaml"
    path.write_text(mutate_text(TEXTS[NAMES[seed % len(NAMES)]], rng), errors="surrogatepass")
    status, result = check_case(lambda: load_chip(path))
    if status == "ok":
        _consistent(result)
    else:
        assert result.startswith(f"{path}")


@pytest.mark.parametrize("seed", range(40))
def test_mutated_spec_bytes(tmp_path, seed):
    rng = random.Random(1000 + seed)
    path = tmp_path / "spec.yaml"
    path.write_bytes(mutate_bytes(TEXTS[NAMES[seed % len(NAMES)]].encode(), rng))
    status, result = check_case(lambda: load_chip(path))
    if status == "ok":
        _consistent(result)


@pytest.mark.parametrize("seed", range(60))
def test_random_trees(seed):
    tree = random_tree(random.Random(2000 + seed))
    status, result = check_case(lambda: spec_from_dict(tree, "<fuzz>"))
    assert status == "error" and result.startswith("<fuzz>: ")  # no tree is a whole spec


CHANGES = [{"clock": v} for v in ("1 GHz", 0, -1.0, float("nan"), "1e400 GHz", 1e12, "x")] + [
    {"cores": {"count": v}} for v in (1, 0, 10**6, 10**7, 2.5, True)] + [
    {"cores": {"matrix_units": []}}, {"memory": {"stacks": 0}}, {"die_area": 1e9},
    {"dies": 3}, {"description": "999 cores"}, {"links": {"count": 0}},
    {"shared_buffer": {"size": "1e20 B"}}, {"process_node": "N1"}]


@pytest.mark.parametrize("seed", range(40))
def test_random_derive_changes(seed):
    rng = random.Random(3000 + seed)
    changes: dict = {}
    for _ in range(rng.randrange(1, 3)):
        changes.update(rng.choice(CHANGES))
    base = load_chip(rng.choice(NAMES))
    status, result = check_case(lambda: derive_chip(base, changes))
    if status == "ok":
        _consistent(result)
    else:
        assert result.startswith(f"derived from {base.name!r}: ")


def test_every_error_is_a_spec_error(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError):
        load_chip(path)
