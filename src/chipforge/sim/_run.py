"""simulate(): load a program's DRAM image and inputs, run the scheduler, read outputs."""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np

from chipforge.arch import ChipSpec, load_chip
from chipforge.isa import Program
from chipforge.machine import CoreTiming
from chipforge.numerics import NP_DTYPE, cast, name_of
from chipforge.sim._result import SimResult
from chipforge.sim._semantics import Machine
from chipforge.sim._state import CoreState, SimError
from chipforge.sim._timing import UNIT_NAMES, Scheduler


def simulate(program: Program, chip: ChipSpec | str,
             inputs: dict[str, np.ndarray] | None = None, *, functional: bool = True,
             trace: bool = False) -> SimResult:
    """Run ``program`` once on ``chip``: functional (memory contents, outputs) and timed.

    ``functional=False`` times the program without touching memory (no outputs).
    ``trace=True`` keeps one event per instruction for :meth:`SimResult.write_trace`."""
    spec = load_chip(chip) if isinstance(chip, str) else chip
    timing = CoreTiming.of(spec)
    if len(program.cores) > timing.cores:
        raise SimError(f"program has {len(program.cores)} core streams, expected <= "
                       f"{timing.cores} (the cores of {spec.name})")
    machine = None
    if functional:
        machine = Machine(timing, _load_dram(program, inputs or {}),
                          [CoreState(i, timing.local_sram_bytes)
                           for i in range(len(program.cores))])
    sched = Scheduler(program.cores, timing, machine, trace)
    with _one_blas_thread():
        sched.run()
        if machine is not None:  # the run ends with every instruction's effect applied
            for core in machine.cores:
                core.flush()
    outputs = _read_outputs(program, machine.dram) if machine is not None else {}
    busy = {(c.index, UNIT_NAMES[u]): c.busy[u] for c in sched.cores for u in range(3)}
    return SimResult(outputs, sched.cycles, timing.clock_hz, busy,
                     sum(c.executed for c in sched.cores), sched.op_cycles,
                     sched.events if trace else None, program.cores, machine)


_BLAS: list = []  # the threadpoolctl controller, made on first use


def _one_blas_thread() -> AbstractContextManager:
    """BLAS limited to one thread for the run. Speed only: every product is exact or settled
    to the exactly rounded result (numerics._exact), whatever the order BLAS sums in. The
    simulator's products are many and small, so threads only contend: GPT-2 small's prefill
    on forge-i1 simulated in 7.4 s with one OpenBLAS thread, 33.9 s with two, on a shared
    2-core machine."""
    if not _BLAS:
        from threadpoolctl import ThreadpoolController  # lists the libraries: made once

        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def _span(program: Program, name: str) -> tuple[int, int, np.dtype, tuple[int, ...]]:
    t = program.tensors[name]
    if t.dtype not in NP_DTYPE:
        raise SimError(f"tensor {name!r} has dtype {t.dtype!r}, expected one of "
                       f"{', '.join(NP_DTYPE)}")
    dt = NP_DTYPE[t.dtype]
    nbytes = int(np.prod(t.shape, dtype=np.int64)) * dt.itemsize
    if t.addr + nbytes > program.dram_bytes:
        raise SimError(f"tensor {name!r} at {t.addr} ({nbytes} bytes) ends past the "
                       f"program's {program.dram_bytes}-byte DRAM")
    return t.addr, nbytes, dt, tuple(t.shape)


def _load_dram(program: Program, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """DRAM: zeros, then the init segments in order, then the inputs.

    Every page is written here, the zeros only where no segment goes: pages first touched
    by the run's scattered DMA stores cost more (measured, GPT-2 small on forge-i1: its
    13,600 DMA_STOREs took 0.3-0.5 s CPU into untouched DRAM, 0.08 s into written DRAM)."""
    dram = np.empty(program.dram_bytes, np.uint8)
    top = 0
    for addr, end in sorted((a, a + len(d)) for a, d in program.init.items()):
        dram[top:addr] = 0  # empty where the segment starts at or below top
        top = max(top, end)
    dram[top:] = 0
    for addr, data in program.init.items():
        if addr + len(data) > dram.size:
            raise SimError(f"DRAM init segment at {addr} ({len(data)} bytes) ends past the "
                           f"program's {dram.size}-byte DRAM")
        dram[addr:addr + len(data)] = np.frombuffer(data, np.uint8)
    for name, value in inputs.items():
        if name not in program.tensors:
            raise SimError(f"unknown input {name!r}; the program's inputs are: "
                           f"{', '.join(program.inputs) or '(none)'}")
        addr, nbytes, dt, shape = _span(program, name)
        data = _convert(name, np.asarray(value), dt, shape)
        dram[addr:addr + nbytes] = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return dram


def _convert(name: str, x: np.ndarray, dt: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """An input as the tensor's dtype: the same dtype as is; floats via float32 (an explicit
    rounding of float64) then one numerics.cast; integers range-checked, never wrapped."""
    if x.shape != shape:
        raise SimError(f"input {name!r} has shape {x.shape}, expected {shape}")
    if x.dtype == dt:
        return x
    target = name_of(dt)
    if np.issubdtype(dt, np.integer):
        if not (np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
            raise SimError(f"input {name!r} is {x.dtype}, expected integers for {target}")
        info = np.iinfo(dt)
        if x.size and (x.min() < info.min or x.max() > info.max):
            raise SimError(f"input {name!r} has values in [{x.min()}, {x.max()}], expected "
                           f"{target}'s range [{info.min}, {info.max}]")
        return x.astype(dt)
    try:
        x32 = x.astype(np.float32)
    except (TypeError, ValueError):
        raise SimError(f"input {name!r} is {x.dtype}, expected numbers for {target}") from None
    return cast(x32, target)


def _read_outputs(program: Program, dram: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for name in program.outputs:
        if name not in program.tensors:
            raise SimError(f"output {name!r} has no tensor placement in the program")
        addr, nbytes, dt, shape = _span(program, name)
        out[name] = dram[addr:addr + nbytes].view(dt).reshape(shape).copy()
    return out
