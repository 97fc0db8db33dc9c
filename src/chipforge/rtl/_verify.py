"""``chipforge rtl verify``: random matrix-unit instructions on the RTL (Amaranth's
simulator, an async testbench) against the functional simulator's semantics.

Instructions run in batches of 1-6, pushed into the queue back to back. Before each batch
the whole operand SRAM gets fresh random data (written into the RTL's SRAM banks and the
golden core's SRAM alike); the accumulators start random and are never reset, so
ACCUMULATE adds into earlier results. After each batch every accumulator word is compared;
a wrong word is charged to the batch's last instruction that wrote it. Cycles are counted
by the testbench, edge by edge: from the cycle ``accepted`` strobes to the cycle ``done``
strobes (the ISA cost), and from ``accepted`` to the instruction's last accumulator write
or weight shift (the cost plus the ISA's ``latency``: 0, or R for an MM_OS's drain,
whose writes ``os_we`` strobes after its ``done``); successive accepts in a batch must be
exactly one cost apart, and the batch ends when ``busy`` falls after the last drain.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from chipforge.isa import Instr, Opcode, cycles, disassemble, latency
from chipforge.rtl._config import CoreConfig, payload
from chipforge.rtl._core import MatrixCore
from chipforge.rtl._golden import (
    Golden,
    InstrGen,
    random_acc,
    random_elems,
    same_words,
    written_words,
)


@dataclass
class InstrResult:
    index: int
    text: str
    model_cycles: int
    rtl_cycles: int
    cycles_ok: bool  # RTL = model, last write at cost + latency, back-to-back spacing
    mismatches: int  # accumulator words this instruction left wrong


@dataclass
class VerifyReport:
    cfg: CoreConfig
    seed: int
    results: list[InstrResult] = field(default_factory=list)
    total_rtl_cycles: int = 0

    @property
    def mismatches(self) -> int:
        return sum(r.mismatches for r in self.results)

    @property
    def cycle_errors(self) -> int:
        return sum(not r.cycles_ok for r in self.results)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.cycle_errors


@dataclass
class _Timing:
    accept: int
    done: int = -1
    last_active: int = -1
    active: int = 0


async def _run_batch(ctx, core: MatrixCore, words: list[int], os_flags: list[bool],
                     budget: int) -> list[_Timing]:
    """Push ``words`` into the queue and watch each instruction from accept to done and to
    its last write; an MM_OS drain's writes belong to the last MM_OS done before them."""
    pending, out, cur, drain, cycle = list(words), [], None, None, 0
    payload_bits = core.instr.payload.as_value()
    busy = True
    while len(out) < len(words) or busy:
        ctx.set(core.instr.valid, bool(pending))
        if pending:
            ctx.set(payload_bits, pending[0])
        _, _, ready, accepted, done, we, os_we, load, busy = await ctx.tick().sample(
            core.instr.ready, core.accepted, core.done, core.acc_we, core.os_we,
            core.w_load, core.busy)
        if pending and ready:
            pending.pop(0)
        if cur is not None and (we or load):
            cur.active, cur.last_active = cur.active + 1, cycle
        if drain is not None and os_we:
            drain.active, drain.last_active = drain.active + 1, cycle
        if done and cur is not None:
            cur.done = cycle
            if os_flags[len(out)]:
                drain = cur
            out.append(cur)
            cur = None
        if accepted:
            cur = _Timing(cycle)
        cycle += 1
        if cycle > budget:
            raise RuntimeError(f"the RTL did not finish {len(words)} instructions in "
                               f"{budget} cycles")
    ctx.set(core.instr.valid, 0)
    return out


def _poke(ctx, banks, words: np.ndarray) -> None:
    nb = len(banks)
    for e, w in enumerate(words.tolist()):
        ctx.set(banks[e % nb].data[e // nb], w)


def _peek(ctx, banks, count: int) -> np.ndarray:
    nb = len(banks)
    return np.array([ctx.get(banks[e % nb].data[e // nb]) for e in range(count)], np.uint32)


def _check_timing(ins: Instr, tm: _Timing, cost: int, lat: int, prev: _Timing | None,
                  prev_cost: int, rows: int) -> bool:
    rtl = tm.done - tm.accept
    writes = rows if ins.op is Opcode.MM_LW else ins.named["m"]
    ok = rtl == cost and tm.active == writes
    ok &= writes == 0 or tm.last_active - tm.accept == cost + lat
    if prev is not None:
        ok &= tm.accept - prev.accept == prev_cost  # back to back: accepted when free
    return ok


def run_verify(cfg: CoreConfig, count: int, seed: int, vcd: Path | None = None,
               max_batch: int = 6, os_share: float = 0.35) -> VerifyReport:
    """Run ``count`` random instructions (``os_share`` of them MM_OS); see the module
    docstring."""
    rng = np.random.default_rng(seed)
    gen, gold, core = InstrGen(cfg, rng, os_share), Golden.of(cfg), MatrixCore(cfg)
    timing, report = cfg.timing(), VerifyReport(cfg, seed)
    uint = np.uint16 if cfg.itemsize == 2 else np.uint8

    async def bench(ctx) -> None:
        acc0 = random_acc(cfg, rng)
        _poke(ctx, core.acc.banks, acc0)
        gold.set_acc(acc0)
        while len(report.results) < count:
            batch = [gen.next() for _ in range(min(count - len(report.results),
                                                   int(rng.integers(1, max_batch + 1))))]
            elems = random_elems(cfg, rng, cfg.sram_words)
            _poke(ctx, core.sram.banks, elems.view(uint))
            gold.set_sram(elems)
            costs = [cycles(i, timing) for i in batch]
            lats = [latency(i, timing) for i in batch]
            words = [cfg.layout().const(payload(cfg, i)).as_value().value for i in batch]
            tms = await _run_batch(ctx, core, words, [i.op is Opcode.MM_OS for i in batch],
                                   sum(costs) + max(lats) + 64)
            writer: dict[int, int] = {}
            for j, ins in enumerate(batch):
                with np.errstate(all="ignore"):  # inf/NaN operands are part of the test
                    gold.run(ins)
                for w in written_words(ins, gold.core.weight_shape[1]):
                    writer[w] = j
            want = gold.acc_words()
            same = same_words(_peek(ctx, core.acc.banks, cfg.acc_words), want,
                              cfg.fmt.is_float)
            bad = [writer.get(int(w), len(batch) - 1) for w in np.nonzero(~same)[0]]
            if bad:  # resynchronize, so that each wrong word is charged once
                _poke(ctx, core.acc.banks, want)
            for j, (ins, tm) in enumerate(zip(batch, tms)):
                prev = tms[j - 1] if j else None
                ok = _check_timing(ins, tm, costs[j], lats[j], prev, costs[j - 1], cfg.rows)
                report.results.append(InstrResult(len(report.results), disassemble(ins),
                                                  costs[j], tm.done - tm.accept, ok,
                                                  bad.count(j)))
                report.total_rtl_cycles += tm.done - tm.accept

    sim = Simulator(core)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    with sim.write_vcd(str(vcd)) if vcd else nullcontext():
        sim.run()
    return report
