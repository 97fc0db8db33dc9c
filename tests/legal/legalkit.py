"""Shared helpers for the chipforge.legal tests: constructed chips and fixed measures."""

from __future__ import annotations

from collections.abc import Callable

from chipforge.arch import ChipSpec, derive_chip, load_chip
from chipforge.legal import Measured


def fixed(tpp: float = 1000.0, pd: float = 1.0, transistors: float | None = 10e9,
          density: float | None = 1.0) -> Callable[[ChipSpec], Measured]:
    """A measure that gives the same constructed figures for any chip."""
    return lambda chip: Measured(tpp=tpp, pd=pd, transistors=transistors,
                                 transistor_source="published",
                                 memory_bw_density_gb_s_mm2=density)


# the forge chips as they were before the legal scenarios re-derived them (issue 13): 1 GiB
# of global SRAM and four HBM3e stacks, the design the rules presume controlled at TSMC
PRE_LEGAL = {"shared_buffer": {"size": "1024 MiB"},
             "memory": {"kind": "HBM3e", "stacks": 4, "capacity": "144 GB",
                        "bandwidth": "4 TB/s"}}


def pre_legal(name: str) -> ChipSpec:
    """Catalog ``name`` (forge-i1 or forge-t1) with PRE_LEGAL's SRAM and HBM3e."""
    return derive_chip(load_chip(name), PRE_LEGAL)


def own_chip(**changes: object) -> ChipSpec:
    """The pre-legal forge-i1 (vendor chipforge, HBM3e, 1 GiB SRAM, N4) with ``changes``
    (YAML keys) merged in."""
    base = pre_legal("forge-i1")
    return derive_chip(base, dict(changes)) if changes else base


def pre_legal_spec(name: str, folder) -> str:
    """A spec file of ``pre_legal(name)`` in ``folder``, for the CLI: the catalog YAML with
    its global SRAM and memory replaced as PRE_LEGAL has them."""
    import re
    from pathlib import Path

    catalog = Path(__file__).resolve().parents[2] / "src/chipforge/arch/catalog"
    text = (catalog / f"{name}.yaml").read_text()
    text = re.sub(r"(shared_buffer:\n  name: global SRAM\n  size: )\{value: [^,]+,",
                  r"\1{value: 1024 MiB,", text)
    memory = ("memory:\n  kind: HBM3e\n  stacks: {value: 4, assumption: test}\n"
              "  capacity: {value: 144 GB, assumption: test}\n"
              "  bandwidth: {value: 4 TB/s, assumption: test}\n")
    text = re.sub(r"memory:\n(  .*\n)+?(?=links:)", memory, text)
    text = re.sub(r"^description: .*\n", "", text, count=1, flags=re.M)  # regenerated
    path = folder / f"{name}-pre-legal.yaml"
    path.write_text(text.replace(f"name: {name}\n", f"name: {name}-pre-legal\n", 1))
    return str(path)
