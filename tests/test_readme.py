"""The README is executable (issue 11, point 3): every ```sh and ```python block runs as
written, in order, from a copy of the repository root, and exits 0 without a traceback.

``.venv/bin/`` in a shell block is this test's own venv (the folder of ``sys.executable``).
A block may be skipped only for something impossible here, with an HTML comment on the
line before its fence: ``<!-- readme-test: skip (the reason) -->``; the test checks that
such blocks stay rare and give a reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((.+)\)\s*-->\s*$")
# what the blocks write, kept out of the copy of the repository root
CREATED = {"out", "build", ".venv", ".git", "prog.cfp", "trace.json"}
MAX_SKIPPED = 1


def blocks() -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, skip reason) of each fenced block of the README."""
    found, lines = [], README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        skip = SKIP.match(lines[i - 1]) if i > 0 else None
        found.append((i + 1, match[1], "\n".join(lines[i + 1:end]) + "\n",
                      skip[1] if skip else None))
        i = end + 1
    return found


RUNNABLE = [b for b in blocks() if b[1] in ("sh", "python")]


def test_the_readme_has_runnable_blocks_and_few_skips():
    assert len(RUNNABLE) >= 6
    assert all(b[1] in ("sh", "python", "ini", "yaml", "text", "") for b in blocks())
    skipped = [b for b in RUNNABLE if b[3]]
    assert len(skipped) <= MAX_SKIPPED, [b[0] for b in skipped]
    assert all(len(b[3]) > 20 for b in skipped)  # a reason, not a placeholder


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A copy of the repository root: every entry linked, except what the blocks create."""
    work = tmp_path / "repo"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in CREATED and not entry.name.endswith(".cfp"):
            (work / entry.name).symlink_to(entry)
    return work


def _run_block(workdir: Path, line: int, language: str, code: str) -> None:
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PYTHONPATH": str(workdir), "COLUMNS": "120"}
    if language == "sh":
        cmd = ["bash", "-euo", "pipefail", "-c", code.replace(".venv/bin/", venv_bin + "/")]
    else:
        cmd = [sys.executable, "-c", code]
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)
    where = f"README.md:{line} ({language})"
    assert done.returncode == 0, f"{where} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{where} printed nothing"


@pytest.mark.slow  # minutes (chipforge report): under xdist the module must start first
def test_readme_blocks_run_in_order(workdir):
    """Each block as written, in the README's order (later blocks may use what earlier ones
    wrote); then the report they wrote shows the compiled models and the RTL check, not an
    "install X" placeholder."""
    ran = []
    for line, language, code, skip in RUNNABLE:
        if not skip:
            _run_block(workdir, line, language, code)
            ran.append(line)
    assert len(ran) == len(RUNNABLE) - sum(1 for b in RUNNABLE if b[3])
    page = workdir / "out" / "report" / "index.html"
    assert page.exists(), "the README's blocks wrote no out/report/index.html"
    html = page.read_text(encoding="utf-8")
    assert 'id="compiled"' in html and 'id="rtl"' in html
    assert "Not available:" not in html and "not installed" not in html
