"""Fuzzed design-space files: mutated YAML loads into a problem whose size is computed
without enumerating it, or fails with one DseError line, in bounded time."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from fuzzkit import check_case, mutate_text

from chipforge.dse import load_problem
from chipforge.dse._design import dimensions, space_size

sys.path.insert(0, str(Path(__file__).parents[1] / "dse"))
from dse_fixtures import TINY_CONSTRAINTS, TINY_SPACE  # noqa: E402

SPACES = [TINY_SPACE, (Path(__file__).parents[2] / "designs/forge-t1/space.yaml").read_text()]


@pytest.mark.parametrize("seed", range(80))
def test_mutated_spaces(tmp_path, seed):
    rng = random.Random(seed)
    space = tmp_path / "space.yaml"
    space.write_text(mutate_text(SPACES[seed % 2], rng), errors="surrogatepass")
    cons = tmp_path / "c.yaml"
    cons.write_text(mutate_text(TINY_CONSTRAINTS, rng, edits=seed % 2),
                    errors="surrogatepass")

    def load_and_size():
        problem = load_problem(space, cons)
        return space_size(dimensions(problem.space, str(space)))

    status, size = check_case(load_and_size)
    if status == "ok":
        assert size is None or size >= 1
