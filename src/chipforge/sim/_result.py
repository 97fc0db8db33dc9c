"""What one simulation returns: outputs, cycles, unit busy time, per-op cycles, trace."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chipforge.isa import Instr, disassemble
from chipforge.sim._semantics import Machine
from chipforge.sim._state import SimError
from chipforge.sim._timing import UNIT_NAMES, label_of, mnemonic


@dataclass
class SimResult:
    outputs: dict[str, np.ndarray]
    cycles: int  # max over cores
    clock_hz: float
    busy: dict[tuple[int, str], int]  # (core, "DMA"|"MXU"|"VEC") -> busy cycles
    instructions: int  # instructions the front ends issued (those after HALT excluded)
    op_cycles: dict[str, int]  # op label -> busy cycles over all units
    events: list[tuple[int, int, int, int, int]] | None = None  # core, unit, pc, start, dur
    program_cores: list[list[Instr]] = field(default_factory=list, repr=False)
    machine: Machine | None = field(default=None, repr=False)  # final memories (functional)

    @property
    def seconds(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def utilization(self) -> dict[tuple[int, str], float]:
        """Busy cycles / total cycles per (core, unit)."""
        return {k: (v / self.cycles if self.cycles else 0.0) for k, v in self.busy.items()}

    def top_ops(self, n: int = 10) -> list[tuple[str, int]]:
        """The n op labels with the most busy cycles, most first."""
        return sorted(self.op_cycles.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def summary(self) -> str:
        lines = [f"{self.cycles} cycles ({self.seconds * 1e6:.3f} us), "
                 f"{self.instructions} instructions"]
        for unit in UNIT_NAMES[:3]:
            u = [v for (c, name), v in self.utilization.items() if name == unit]
            if u:
                lines.append(f"  {unit} utilization: mean {sum(u) / len(u):.1%}, max {max(u):.1%}")
        for label, cyc in self.top_ops(5):
            lines.append(f"  {label}: {cyc} unit-cycles")
        return "\n".join(lines)

    def trace_json(self) -> dict:
        """Chrome trace event format: "X" complete events (ts/dur in microseconds), pid =
        core, tid = unit, plus "M" metadata naming processes and threads."""
        if self.events is None:
            raise SimError("no trace recorded: call simulate(..., trace=True)")
        us = 1e6 / self.clock_hz
        out: list[dict] = []
        # every core gets its DMA/MXU/VEC tracks (even idle ones); CTRL only for barriers
        used = sorted({(c, u) for c, *_ in self.events for u in range(3)}
                      | {(c, u) for c, u, *_ in self.events})
        for c in sorted({c for c, _ in used}):
            out.append({"name": "process_name", "ph": "M", "pid": c, "tid": 0,
                        "args": {"name": f"core {c}"}})
            out.append({"name": "process_sort_index", "ph": "M", "pid": c, "tid": 0,
                        "args": {"sort_index": c}})
        for c, u in used:
            out.append({"name": "thread_name", "ph": "M", "pid": c, "tid": u,
                        "args": {"name": UNIT_NAMES[u]}})
            out.append({"name": "thread_sort_index", "ph": "M", "pid": c, "tid": u,
                        "args": {"sort_index": u}})
        for c, u, pc, start, dur in self.events:
            ins = self.program_cores[c][pc]
            label = label_of(ins)
            name = mnemonic(ins) if label == "(unlabelled)" else f"{label}: {mnemonic(ins)}"
            out.append({"name": name, "cat": UNIT_NAMES[u], "ph": "X", "ts": start * us,
                        "dur": dur * us, "pid": c, "tid": u,
                        "args": {"pc": pc, "cycles": dur, "start_cycle": start,
                                 "instr": disassemble(ins)}})
        return {"traceEvents": out, "displayTimeUnit": "ns",
                "otherData": {"clock_hz": self.clock_hz, "cycles": self.cycles}}

    def kernel_cycles(self) -> dict[str, int]:
        """Wall cycles of each kernel (op label): from the first start of its instructions
        on any core to the release of its closing barrier. Needs ``trace=True``."""
        if self.events is None:
            raise SimError("no trace recorded: call simulate(..., trace=True)")
        span: dict[str, list[int]] = {}
        for c, _, pc, start, dur in self.events:
            label = label_of(self.program_cores[c][pc])
            lo_hi = span.setdefault(label, [start, start + dur])
            lo_hi[0] = min(lo_hi[0], start)
            lo_hi[1] = max(lo_hi[1], start + dur)
        return {label: hi - lo for label, (lo, hi) in span.items()}

    def write_trace(self, path: str | Path) -> Path:
        """Write a JSON trace that opens in ui.perfetto.dev and chrome://tracing."""
        path = Path(path)
        path.write_text(json.dumps(self.trace_json()))
        return path
