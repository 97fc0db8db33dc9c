"""The package layers hold: no import runs back up or across a floor, no module imports
another package's private modules, and no import runs in a circle (chipforge._layers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from chipforge._layers import FLOORS, cycles, violations

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_code_holds_the_layers() -> None:
    assert violations(SRC) == []


def test_every_package_is_on_a_floor() -> None:
    packages = {p.name for p in (SRC / "chipforge").iterdir()
                if (p / "__init__.py").exists()} | {"errors"}
    placed = {name for floor in FLOORS for name in floor}
    assert packages <= placed


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "chipforge" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_each_breach_is_named(tmp_path: Path) -> None:
    src = _tree(tmp_path, {
        "__init__.py": "",
        "arch/__init__.py": "",
        "arch/_spec.py": "",
        "perf/__init__.py": "",
        "perf/_engine.py": "from chipforge.arch._spec import X\n",  # private, across
        "isa/__init__.py": "",
        "isa/_cost.py": "def f():\n    from chipforge.sim import run\n",  # runs back up
        "sim/__init__.py": "from chipforge.sim import _a\n",
        "sim/_a.py": "from . import _b\n",  # relative imports, a circle
        "sim/_b.py": "import chipforge.sim._a\n",
    })
    found = violations(src)
    assert any("chipforge.perf._engine (line 1) imports chipforge.arch._spec: a private"
               in v for v in found)
    assert any("chipforge.isa._cost (line 2) imports chipforge.sim: sim is not on a floor "
               "below isa" in v for v in found)
    assert "import circle: chipforge.sim._a -> chipforge.sim._b" in found
    assert len(found) == 3


def test_type_checking_imports_make_no_circle(tmp_path: Path) -> None:
    src = _tree(tmp_path, {
        "__init__.py": "",
        "sim/__init__.py": "",
        "sim/_a.py": "from chipforge.sim._b import B\n",
        "sim/_b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from chipforge.sim._a import A\n",
    })
    assert violations(src) == []


def test_cycles_finds_each_strongly_connected_group() -> None:
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"a"}}
    assert sorted(cycles(graph)) == [["a", "b"], ["c", "d"]]


def test_architecture_page_is_current() -> None:
    """docs/architecture.md is what scripts/gen_architecture.py writes from today's code."""
    script = SRC.parent / "scripts" / "gen_architecture.py"
    spec = importlib.util.spec_from_file_location("gen_architecture", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OUT.read_text() == module.render(), \
        "run scripts/gen_architecture.py (make docs) and commit docs/architecture.md"
