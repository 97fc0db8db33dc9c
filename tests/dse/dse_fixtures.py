"""Small spaces and constraint files for the DSE tests, written into a temporary folder."""

from __future__ import annotations

from pathlib import Path

# 2 x 2 x 2 = 8 points around forge-i1
TINY_SPACE = """\
name: tiny
base: forge-i1
params:
  cores: {choices: [2, 4]}
  clock_ghz: {choices: [1.0, 1.5]}
  memory:
    - {kind: GDDR7, stacks: {choices: [8, 16]}, capacity_per_stack_gb: 3}
"""

TINY_CONSTRAINTS = """\
objectives: [serving_tokens_per_s_per_usd, power_w]
constraints:
  max_export_tier: not controlled
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path
