"""Event-driven timing: per core a front end and three in-order unit queues.

* The front end issues the program in order, one instruction per cycle, into the DMA, MXU
  and VEC queues (unbounded). NOP and HALT occupy it for their cycles(); BARRIER stops it
  until the barrier completes; HALT (or the end of the stream) stops it for good.
* A unit runs its queue in order: an instruction starts at max(dispatch time, unit free,
  time its wait semaphores (``wait`` and ``wait2``) reached their values) and occupies the
  unit for ``isa.cycles``. It completes ``isa.latency`` cycles after that (a DMA's DRAM
  round trip, overlapped with the next transfers, which may start as soon as the unit is
  free); on completion it increments its signal semaphore (32 counters per core).
* BARRIER: a core arrives when all its earlier instructions are complete; the barrier
  completes BARRIER_CYCLES after the last core's arrival, and the front end resumes then.
* Functional effects happen at start, in global (start time, core, pc) order. Completions at
  a time are handled before starts at that time, so a semaphore that reaches its value at t
  lets a waiter start at t.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush

from chipforge.isa import ALU_ENUM, Instr, Opcode, Unit, cycles, latency
from chipforge.machine import BARRIER_CYCLES, CoreTiming
from chipforge.sim._semantics import SEMANTICS, Machine
from chipforge.sim._state import Fault, SimError

DMA, MXU, VEC, CTRL = 0, 1, 2, 3
UNIT_NAMES = ("DMA", "MXU", "VEC", "CTRL")
_CODE = {Unit.DMA: DMA, Unit.MXU: MXU, Unit.VEC: VEC, Unit.CTRL: CTRL}
_DONE, _FREE, _START = 0, 1, 2  # completions, then freed units, then starts at one time


def mnemonic(ins: Instr) -> str:
    if ins.op in ALU_ENUM:
        try:
            return f"{ins.op.name}.{ALU_ENUM[ins.op](ins.alu).name}"
        except ValueError:
            pass
    return ins.op.name


def label_of(ins: Instr) -> str:
    """The op label: the comment's text before its first ':' (or "(unlabelled)")."""
    head, sep, _ = ins.comment.partition(":")
    return head.strip() if sep else "(unlabelled)"


def _check_alu(core: int, pc: int, ins: Instr) -> None:
    enum = ALU_ENUM.get(ins.op)
    if enum is not None and ins.alu not in enum._value2member_map_:
        raise SimError(f"core {core} pc {pc} {ins.op.name}: alu={ins.alu}, expected one of "
                       f"{', '.join(e.name for e in enum)}")


class _Core:
    def __init__(self, index: int, instrs: list[Instr], timing: CoreTiming,
                 cost: dict) -> None:
        self.index, self.instrs = index, instrs
        self.unit = [_CODE[i.unit] for i in instrs]
        self.cyc = []
        self.lat = []
        for pc, ins in enumerate(instrs):
            key = (ins.op, ins.args, ins.dtype, ins.alu)
            c = cost.get(key)
            if c is None:
                _check_alu(index, pc, ins)  # cycles() needs a valid ALU op too
                c = cost[key] = (max(1, int(cycles(ins, timing))), int(latency(ins, timing)))
            self.cyc.append(c[0])
            self.lat.append(c[1])
        # wait and wait2: the instruction starts once every listed semaphore reached its value
        self.waits = [tuple(w for w in (ins.wait, getattr(ins, "wait2", None)) if w)
                      for ins in instrs]
        self.disp = [0] * len(instrs)
        self.queues: tuple[deque, deque, deque] = (deque(), deque(), deque())
        self.free = [0, 0, 0]
        self.running = [False, False, False]
        self.busy = [0, 0, 0]
        self.sem = [0] * 32
        self.blocked: dict[int, list[int]] = {}
        self.outstanding = 0
        self.last_done = 0
        self.fe_pc = 0
        self.fe_end = 0
        self.barrier_pc: int | None = None
        self.barrier_time = 0
        self.barriers = 0  # barriers passed
        self.executed = 0


class Scheduler:
    def __init__(self, cores: list[list[Instr]], timing: CoreTiming, machine: Machine | None,
                 trace: bool) -> None:
        cost: dict = {}
        self.cores = [_Core(i, list(instrs), timing, cost) for i, instrs in enumerate(cores)]
        self.machine, self.trace = machine, trace
        self.heap: list[tuple[int, int, int, int]] = []
        self.arrivals: dict[int, tuple[int, int]] = {}  # core -> (arrival time, pc)
        self.events: list[tuple[int, int, int, int, int]] = []  # core, unit, pc, start, dur
        self.op_cycles: dict[str, int] = {}

    def run(self) -> None:
        for core in self.cores:
            self._dispatch(core, 0)
        heap, cores = self.heap, self.cores
        while heap:
            t, kind, ci, pc = heappop(heap)
            if kind == _START:
                self._start(cores[ci], pc, t)
            elif kind == _FREE:
                self._free(cores[ci], cores[ci].unit[pc], t)
            else:
                self._complete(cores[ci], pc, t)
        self._check_finished()

    @property
    def cycles(self) -> int:
        return max((max(c.last_done, c.fe_end) for c in self.cores), default=0)

    def _dispatch(self, core: _Core, t: int) -> None:
        instrs, units, n = core.instrs, core.unit, len(core.instrs)
        pc = core.fe_pc
        while pc < n:
            u = units[pc]
            core.executed += 1
            if u == CTRL:
                op = instrs[pc].op
                if op is Opcode.BARRIER:
                    core.barrier_pc, core.barrier_time, core.fe_pc = pc, t, pc + 1
                    if core.outstanding == 0:
                        self._arrive(core)
                    return
                t += core.cyc[pc]
                pc = n if op is Opcode.HALT else pc + 1
                continue
            core.disp[pc] = t
            q = core.queues[u]
            q.append(pc)
            core.outstanding += 1
            if len(q) == 1:
                self._try(core, u, t)
            t += 1
            pc += 1
        core.fe_pc, core.fe_end = n, t

    def _try(self, core: _Core, u: int, now: int) -> None:
        """Schedule the start of unit u's queue head if the unit is idle and its wait met."""
        q = core.queues[u]
        if core.running[u] or not q:
            return
        pc = q[0]
        for s, v in core.waits[pc]:
            if core.sem[s] < v:
                core.blocked.setdefault(s, []).append(u)
                return
        q.popleft()
        core.running[u] = True
        heappush(self.heap, (max(core.disp[pc], core.free[u], now), _START, core.index, pc))

    def _start(self, core: _Core, pc: int, t: int) -> None:
        ins, u, cyc = core.instrs[pc], core.unit[pc], core.cyc[pc]
        if self.machine is not None:
            try:
                SEMANTICS[ins.op](self.machine, self.machine.cores[core.index], ins)
            except Fault as exc:
                raise SimError(f"core {core.index} pc {pc} {mnemonic(ins)}: {exc}") from None
        end = t + cyc
        core.free[u] = end
        core.busy[u] += cyc
        label = label_of(ins)
        self.op_cycles[label] = self.op_cycles.get(label, 0) + cyc
        lat = core.lat[pc]
        if self.trace:
            self.events.append((core.index, u, pc, t, cyc + lat))
        if lat:  # the unit takes its next instruction while this one is in flight
            heappush(self.heap, (end, _FREE, core.index, pc))
        heappush(self.heap, (end + lat, _DONE, core.index, pc))

    def _free(self, core: _Core, u: int, t: int) -> None:
        core.running[u] = False
        self._try(core, u, t)

    def _complete(self, core: _Core, pc: int, t: int) -> None:
        u = core.unit[pc]
        if core.last_done < t:
            core.last_done = t
        if u == CTRL:  # a barrier released this core
            core.barrier_pc = None
            core.barriers += 1
            self._dispatch(core, t)
            return
        if not core.lat[pc]:
            core.running[u] = False
        core.outstanding -= 1
        s = core.instrs[pc].signal
        if s is not None:
            core.sem[s] += 1
            for waiting in core.blocked.pop(s, ()):
                self._try(core, waiting, t)
        self._try(core, u, t)
        if core.barrier_pc is not None and core.outstanding == 0:
            self._arrive(core)

    def _arrive(self, core: _Core) -> None:
        pc = core.barrier_pc
        self.arrivals[core.index] = (max(core.barrier_time, core.last_done), pc)
        if len(self.arrivals) < len(self.cores):
            return
        first = self.cores[0]
        want = first.instrs[self.arrivals[0][1]].args
        for c in self.cores:
            bpc = self.arrivals[c.index][1]
            if c.instrs[bpc].args != want:
                raise SimError(f"core {c.index} pc {bpc} BARRIER: barrier_id="
                               f"{c.instrs[bpc].args[0]}, expected core 0's barrier_id="
                               f"{want[0]} (barrier #{first.barriers} of every core)")
        release = max(a for a, _ in self.arrivals.values()) + BARRIER_CYCLES
        for ci, (arrived, bpc) in sorted(self.arrivals.items()):
            heappush(self.heap, (release, _DONE, ci, bpc))
            if self.trace:
                self.events.append((ci, CTRL, bpc, arrived, release - arrived))
        self.arrivals = {}

    def _check_finished(self) -> None:
        for core in self.cores:
            for u in (DMA, MXU, VEC):
                if core.queues[u]:
                    pc = core.queues[u][0]
                    s, v = next((s, v) for s, v in core.waits[pc] if core.sem[s] < v)
                    raise SimError(f"deadlock: core {core.index} pc {pc} "
                                   f"{mnemonic(core.instrs[pc])} waits on semaphore {s} >= {v}, "
                                   f"which reaches only {core.sem[s]}")
        waiting = [c for c in self.cores if c.barrier_pc is not None]
        if waiting:
            c = waiting[0]
            done = [o for o in self.cores if o.barrier_pc is None]
            raise SimError(f"deadlock: core {c.index} pc {c.barrier_pc} waits at BARRIER "
                           f"#{c.barriers}, but core {done[0].index} ended after "
                           f"{done[0].barriers} barrier(s): every core must run the same "
                           "number of barriers")
