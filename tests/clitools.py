"""Finding the installed ``chipforge`` console script, for tests that run it as users do."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def chipforge_exe() -> str:
    exe = Path(sys.executable).parent / "chipforge"
    if exe.exists():
        return str(exe)
    found = shutil.which("chipforge")
    assert found, "the chipforge console script is not installed"
    return found
