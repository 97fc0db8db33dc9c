"""``chipforge compile | run | disasm``: PyTorch models to chip programs and back.

Every user error (a missing file or factory, a factory returning the wrong thing, an
unsupported op, a file that is not a program) is a :class:`ChipforgeError`, printed by
``main`` as one ``error:`` line with exit status 2.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import sys
import traceback
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from chipforge.cli._output import JsonOption, print_json, print_table, say, status
from chipforge.errors import ChipforgeError

console = Console()

QUANT = {"none": None, "int8": "int8", "fp8": "fp8_e4m3"}
FLOAT_DTYPES = ("fp32", "bf16", "fp16")
FACTORY_FORM = ("(module, example_inputs[, calibration]): an nn.Module, a tuple of tensors "
                "and optionally a list of such tuples")
# op labels ride along in the .cfp (Program.save keeps only the binary encoding)


def _describe(value, depth: int = 0) -> str:
    """A short type picture of ``value``: ``(MLP, (Tensor, int))``."""
    if isinstance(value, tuple | list) and depth < 2:
        inner = ", ".join(_describe(v, depth + 1) for v in value[:4])
        more = ", ..." if len(value) > 4 else ""
        if isinstance(value, list):
            return f"[{inner}{more}]"
        return f"({inner},)" if len(value) == 1 else f"({inner}{more})"
    return type(value).__name__


def _user_frame(exc: BaseException, path: Path) -> str:
    """``FILE:LINE`` of the innermost frame of ``exc`` in the user's file, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == path.resolve()]
    return f"{path}:{frames[-1].lineno}" if frames else str(path)


def _import_file(path: Path):
    """Run the user's file as a module (its folder importable, as ``python FILE`` would)."""
    name = f"_chipforge_factory_{path.stem}"  # never shadows a real module such as torch
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ChipforgeError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    sys.path.insert(0, str(path.resolve().parent))
    try:
        module_spec.loader.exec_module(module)
    except ChipforgeError:
        raise
    except Exception as exc:  # the user's code: say where, without a traceback
        raise ChipforgeError(f"{_user_frame(exc, path)}: importing the file raised "
                             f"{type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def _load_factory(spec: str) -> tuple:
    """Call ``PATH.py:FACTORY`` and check what it returns: (module, inputs, calibration)."""
    import torch

    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise ChipforgeError(f"expected PATH.py:FACTORY, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise ChipforgeError(f"{path}: no such file (from {spec!r})")
    module = _import_file(path)
    factory = getattr(module, name, None)
    if not callable(factory):
        found = sorted(k for k, v in vars(module).items()
                       if callable(v) and not k.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise ChipforgeError(f"{path}: has no function {name!r}; callables defined there: "
                             f"{', '.join(found) or '(none)'}")
    try:
        made = factory()
    except ChipforgeError:
        raise
    except Exception as exc:
        raise ChipforgeError(f"{_user_frame(exc, path)}: {name}() raised "
                             f"{type(exc).__name__}: {exc}") from None

    def bad(what: str) -> ChipforgeError:
        return ChipforgeError(f"{spec}: the factory must return {FACTORY_FORM}; {what}")

    def tensors(value) -> bool:
        return isinstance(value, tuple) and all(isinstance(t, torch.Tensor) for t in value)

    if not isinstance(made, tuple) or len(made) not in (2, 3):
        raise bad(f"got {_describe(made)}")
    model, inputs = made[0], made[1]
    if not isinstance(model, torch.nn.Module):
        raise bad(f"got {_describe(made)}, whose first element is not an nn.Module")
    if not tensors(inputs):
        raise bad(f"got {_describe(made)}, whose example inputs are not a tuple of tensors")
    calibration = made[2] if len(made) == 3 else [inputs]
    if not (isinstance(calibration, list | tuple) and calibration
            and all(tensors(c) and len(c) == len(inputs) for c in calibration)):
        raise bad(f"got {_describe(made)}, whose calibration is not a non-empty list of "
                  f"tuples of {len(inputs)} tensor(s)")
    return model, inputs, list(calibration)


@contextlib.contextmanager
def _quiet_capture():
    """torch.export's deprecation warnings, log lines and the graph dump it prints to stderr
    when tracing fails are not the user's to act on (a failure is reported as one error
    line instead); what reached stderr is replayed only if the capture succeeds."""
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    stderr = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(stderr):
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        torch_log.setLevel(level)
    sys.stderr.write(stderr.getvalue())


def _save(program, out: Path) -> None:
    try:
        program.save(out)
    except OSError as exc:
        raise ChipforgeError(f"{out}: cannot write the program: {exc.strerror or exc}") \
            from None


def _load(path: Path):
    from chipforge.isa import Program

    if not path.is_file():
        raise ChipforgeError(f"{path}: no such file; expected a .cfp program "
                             f"(chipforge compile ... -o {path.name})")
    return Program.load(path)


def _program_chip(program, path: Path, chip: str | None):
    """The spec a program runs on. A .cfp names its chip; a name outside the catalog is
    a file path that the program (not the user) chose, so it is only loaded when the user
    passes it with --chip."""
    from chipforge.arch import catalog_names, load_chip

    if chip is None and program.chip not in catalog_names():
        raise ChipforgeError(f"{path}: the program names chip {program.chip!r}, which is not "
                             f"in the catalog; a spec file is only loaded when you pass it: "
                             f"--chip PATH")
    spec = load_chip(chip or program.chip)
    if spec.kind != "accelerator":
        raise ChipforgeError(f"{path}: chip {spec.name!r} is a {spec.kind}; expected a "
                             f"chipforge accelerator (the simulator runs its ISA)")
    return spec


def compile_cmd(
    target: Annotated[str, typer.Argument(help="PATH.py:FACTORY returning (module, inputs"
                                               "[, calibration list])")],
    chip: Annotated[str, typer.Option(help="catalog name or spec path")] = "forge-i1",
    quant: Annotated[str, typer.Option(help="none, int8 or fp8")] = "none",
    dtype: Annotated[str, typer.Option(help="floating-point dtype: fp32, bf16 or fp16")]
    = "bf16",
    out: Annotated[Path, typer.Option("-o", "--out", help="program file")] = Path("prog.cfp"),
    as_json: JsonOption = False,
) -> None:
    """Compile a PyTorch model to a chip program (.cfp)."""
    from chipforge.arch import load_chip

    # check the options before the (slow) capture
    if quant not in QUANT:
        raise ChipforgeError(f"--quant {quant!r}; expected none, int8 or fp8")
    if dtype not in FLOAT_DTYPES:
        raise ChipforgeError(f"--dtype {dtype!r}; expected one of {', '.join(FLOAT_DTYPES)}")
    spec = load_chip(chip)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ChipforgeError("chipforge compile needs PyTorch: pip install "
                             "'chipforge[torch]'") from None

    from chipforge.compiler import capture, compile_graph, feed, quantize_graph, record_reference

    with status(f"importing {target}"):
        model, inputs, calibration = _load_factory(target)
    with status("capturing the model (torch.export)"), _quiet_capture():
        try:
            graph = capture(model.eval(), inputs, name=target.rpartition(":")[2])
        except ChipforgeError as exc:  # the model named first: which one could not be captured
            raise ChipforgeError(f"{target}: {exc}") from None
        except Exception as exc:  # torch.export could not trace the model
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ChipforgeError(f"{target}: torch.export could not capture the model: "
                                 f"{type(exc).__name__}: {first}") from None
    if QUANT[quant]:
        with status(f"quantizing to {quant} on {len(calibration)} calibration input(s)"):
            graph = quantize_graph(graph, [feed(graph, c) for c in calibration], QUANT[quant])
    with status(f"compiling {len(graph.nodes)} kernels for {spec.name}"):
        program = compile_graph(graph, spec, dtype=dtype)
        program.example_inputs = feed(graph, inputs)
        # what `run --check` compares with: PyTorch's outputs and the float64 graph's
        record_reference(program, graph, program.example_inputs,
                         _torch_outputs(model, inputs), QUANT[quant] or dtype)
        _save(program, out)
    if as_json:
        print_json({"program": str(out), "chip": program.chip, "kernels": len(graph.nodes),
                    "instructions": program.instruction_count, "cores": len(program.cores),
                    "dtype": dtype, "quant": quant})
        return
    say(f"{out}: {len(graph.nodes)} kernels, {program.instruction_count} "
        f"instructions on {len(program.cores)} cores of {program.chip}")


def _torch_outputs(model, inputs) -> list[np.ndarray]:
    """The model's outputs in PyTorch (fp32, on the CPU), flattened as the capture does."""
    import torch
    from torch.utils._pytree import tree_flatten

    with torch.no_grad():
        outs = tree_flatten(model(*inputs))[0]
    return [t.detach().float().numpy() for t in outs if isinstance(t, torch.Tensor)]


def _check_doc(program, result, tolerance: float | None) -> list[dict]:
    """Each output's error against the program's recorded reference (``run --check``)."""
    from chipforge.compiler import check_outputs

    return [{"output": c.name, "reference": c.source, "max_abs_error": c.max_abs_error,
             "rel_error": c.rel_error, "tolerance": c.tolerance, "ok": c.ok}
            for c in check_outputs(program, result.outputs, tolerance)]


def _print_check(checks: list[dict]) -> None:
    source = checks[0]["reference"] if checks else "reference"
    table = Table(title=f"--check: outputs vs {source} (relative error = ||y - ref|| / ||ref||)")
    for col in ("output", "max abs error", "relative error", "tolerance", "result"):
        table.add_column(col, justify="left" if col in ("output", "result") else "right")
    for c in checks:
        table.add_row(c["output"], f"{c['max_abs_error']:.3g}", f"{c['rel_error']:.3g}",
                      f"{c['tolerance']:.3g}", "ok" if c["ok"] else "FAIL")
    print_table(table)
    if not all(c["ok"] for c in checks):
        say("check failed: the chip's outputs differ from the reference by more than the "
            "tolerance")


def _read_inputs(path: Path) -> dict[str, np.ndarray]:
    try:
        data = np.load(path, allow_pickle=False)
        if not hasattr(data, "files"):
            raise ChipforgeError(f"{path}: a single array; expected an .npz of named inputs "
                                 f"(numpy.savez(path, name=array, ...))")
        # the arrays are read here, lazily: a pickled or corrupt member fails now
        return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ChipforgeError(f"{path}: cannot read inputs (expected an .npz of named "
                             f"arrays): {exc}") from None


def run_cmd(
    program_path: Annotated[Path, typer.Argument(help="a .cfp program")],
    trace: Annotated[Path | None, typer.Option(help="write a Perfetto trace here")] = None,
    inputs: Annotated[Path | None, typer.Option(help=".npz of inputs (default: the "
                                                     "example inputs saved at compile)")] = None,
    as_json: JsonOption = False,
    check: Annotated[bool, typer.Option("--check", help="compare the outputs with PyTorch's "
                                        "(recorded at compile for the example inputs); "
                                        "exit 1 past the tolerance")] = False,
    tolerance: Annotated[float | None, typer.Option(help="--check: accepted relative error "
                                                    "(default by dtype)")] = None,
    chip: Annotated[str | None, typer.Option(help="run on this chip (catalog name or spec "
                                             "file) instead of the one the program "
                                             "names")] = None,
) -> None:
    """Run a program on the simulator: cycles, time, utilization per unit, top ops."""
    from chipforge.sim import simulate

    program = _load(program_path)
    spec = _program_chip(program, program_path, chip)
    if trace is not None and not trace.parent.is_dir():
        raise ChipforgeError(f"{trace}: cannot write the trace: no folder {trace.parent}")
    if check and inputs is not None:
        raise ChipforgeError("--check compares with the outputs recorded for the example "
                             "inputs; it cannot be used with --inputs")
    feed = program.example_inputs if inputs is None else _read_inputs(inputs)
    with status(f"simulating {program_path} on {spec.name}"):
        result = simulate(program, spec, feed, trace=trace is not None)
    if trace is not None:
        try:
            result.write_trace(trace)
        except OSError as exc:
            raise ChipforgeError(f"{trace}: cannot write the trace: {exc.strerror or exc}") \
                from None
    doc = _run_doc(program_path, chip or program.chip, result, trace)
    if check:
        doc["check"] = _check_doc(program, result, tolerance)
    failed = check and not all(c["ok"] for c in doc["check"])
    if as_json:
        print_json(doc)
        if failed:
            raise typer.Exit(1)
        return
    say(f"[bold]{program_path}[/] on {chip or program.chip}: {result.cycles:,} cycles, "
        f"{result.seconds * 1e6:,.2f} us, {result.instructions:,} instructions")
    title = "utilization per unit (mean over cores)"
    table = Table(title=title, min_width=len(title) + 4)
    for col in ("unit", "busy cycles", "utilization"):
        table.add_column(col, justify="right" if col != "unit" else "left")
    for u in doc["units"]:
        table.add_row(u["unit"], f"{u['busy_cycles']:,}", f"{u['utilization']:.1%}")
    print_table(table)
    ops = Table(title="top ops by unit-cycles")
    ops.add_column("op")
    ops.add_column("unit-cycles", justify="right")
    for op in doc["top_ops"]:
        ops.add_row(op["op"], f"{op['unit_cycles']:,}")
    print_table(ops)
    if trace is not None:
        say(f"trace written to {trace} (open in ui.perfetto.dev)")
    if check:
        _print_check(doc["check"])
    if failed:
        raise typer.Exit(1)


def _run_doc(path: Path, chip: str, result, trace: Path | None) -> dict:
    """What ``run`` prints, in SI units: totals, per-unit busy cycles (summed over cores,
    utilization the mean over cores) and the ten ops with the most unit-cycles."""
    units = []
    for unit in ("DMA", "MXU", "VEC"):
        busy = [v for (_, u), v in result.busy.items() if u == unit]
        if busy:
            units.append({"unit": unit, "busy_cycles": sum(busy),
                          "utilization": sum(busy) / len(busy) / max(result.cycles, 1)})
    return {"program": str(path), "chip": chip, "cycles": result.cycles,
            "seconds": result.seconds, "instructions": result.instructions, "units": units,
            "top_ops": [{"op": label, "unit_cycles": cycles}
                        for label, cycles in result.top_ops(10)],
            "trace": None if trace is None else str(trace)}


def disasm_cmd(program_path: Annotated[Path, typer.Argument(help="a .cfp program")],
               as_json: JsonOption = False) -> None:
    """Print a program's instructions, core by core (each line reads back with
    ``chipforge.isa.assemble`` after the pc column)."""
    from chipforge.isa import disassemble

    program = _load(program_path)
    if as_json:  # {"chip", "cores": [[instruction text, ...] per core]}; index = pc
        print_json({"program": str(program_path), "chip": program.chip,
                    "cores": [[disassemble(i) for i in instrs] for instrs in program.cores]})
        return
    for core, instrs in enumerate(program.cores):
        print(f"; core {core}: {len(instrs)} instructions")
        for pc, instr in enumerate(instrs):
            print(f"{pc:6d}  {disassemble(instr)}")
