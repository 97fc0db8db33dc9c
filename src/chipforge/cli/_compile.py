"""``chipforge compile | run | disasm``: PyTorch models to chip programs and back."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from chipforge.errors import ChipforgeError

console = Console()


def _load_factory(spec: str):
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise ChipforgeError(f"expected PATH.py:FACTORY, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise ChipforgeError(f"{path}: no such file (from {spec!r})")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[path.stem] = module
    module_spec.loader.exec_module(module)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ChipforgeError(f"{path}: has no function {name!r}")
    made = factory()
    if not (isinstance(made, tuple) and len(made) >= 2 and isinstance(made[1], tuple)):
        raise ChipforgeError(f"{spec}: the factory must return (module, example_inputs_tuple"
                             f"[, calibration_list]), got {type(made).__name__}")
    return made


def compile_cmd(
    target: Annotated[str, typer.Argument(help="PATH.py:FACTORY returning (module, inputs)")],
    chip: Annotated[str, typer.Option(help="catalog name or spec path")] = "forge-i1",
    quant: Annotated[str, typer.Option(help="none, int8 or fp8")] = "none",
    dtype: Annotated[str, typer.Option(help="floating-point dtype")] = "bf16",
    out: Annotated[Path, typer.Option("-o", "--out", help="program file")] = Path("prog.cfp"),
) -> None:
    """Compile a PyTorch model to a chip program (.cfp)."""
    from chipforge.compiler._backend import feed
    from chipforge.compiler._lower import compile_graph
    from chipforge.compiler._quant import quantize_graph
    from chipforge.compiler._torch import capture

    made = _load_factory(target)
    module, inputs = made[0], made[1]
    calibration = made[2] if len(made) > 2 else [inputs]
    graph = capture(module.eval(), inputs, name=target.rpartition(":")[2])
    if quant != "none":
        qdtype = {"int8": "int8", "fp8": "fp8_e4m3"}.get(quant)
        if qdtype is None:
            raise ChipforgeError(f"--quant {quant!r}; expected none, int8 or fp8")
        graph = quantize_graph(graph, [feed(graph, c) for c in calibration], qdtype)
    program = compile_graph(graph, chip, dtype=dtype)
    program.example_inputs = feed(graph, inputs)
    program.save(out)
    console.print(f"{out}: {len(graph.nodes)} kernels, {program.instruction_count} "
                  f"instructions on {len(program.cores)} cores of {program.chip}")


def run_cmd(
    program_path: Annotated[Path, typer.Argument(help="a .cfp program")],
    trace: Annotated[Path | None, typer.Option(help="write a Perfetto trace here")] = None,
    inputs: Annotated[Path | None, typer.Option(help=".npz of inputs (default: the "
                                                     "example inputs saved at compile)")] = None,
) -> None:
    """Run a program on the simulator: cycles, time, utilization per unit, top ops."""
    from chipforge.isa import Program
    from chipforge.sim import simulate

    program = Program.load(program_path)
    feed = program.example_inputs
    if inputs is not None:
        data = np.load(inputs)
        feed = {k: data[k] for k in data.files}
    result = simulate(program, program.chip, feed, trace=trace is not None)
    console.print(f"[bold]{program_path}[/] on {program.chip}: {result.cycles:,} cycles, "
                  f"{result.seconds * 1e6:,.2f} us, {result.instructions:,} instructions")
    table = Table(title="utilization per unit (mean over cores)")
    for col in ("unit", "busy cycles", "utilization"):
        table.add_column(col, justify="right" if col != "unit" else "left")
    for unit in ("DMA", "MXU", "VEC"):
        busy = [v for (_, u), v in result.busy.items() if u == unit]
        if busy:
            table.add_row(unit, f"{sum(busy):,}",
                          f"{sum(busy) / len(busy) / max(result.cycles, 1):.1%}")
    console.print(table)
    ops = Table(title="top ops by unit-cycles")
    ops.add_column("op")
    ops.add_column("unit-cycles", justify="right")
    for label, cycles in result.top_ops(10):
        ops.add_row(label, f"{cycles:,}")
    console.print(ops)
    if trace is not None:
        result.write_trace(trace)
        console.print(f"trace written to {trace} (open in ui.perfetto.dev)")


def disasm_cmd(program_path: Annotated[Path, typer.Argument(help="a .cfp program")]) -> None:
    """Print a program's instructions, core by core."""
    from chipforge.isa import Program, disassemble

    program = Program.load(program_path)
    for core, instrs in enumerate(program.cores):
        print(f"; core {core}: {len(instrs)} instructions")
        for pc, instr in enumerate(instrs):
            print(f"{pc:6d}  {disassemble(instr)}")
