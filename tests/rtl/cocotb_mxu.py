"""cocotb 2.x testbench for the EXPORTED Verilog of the matrix core (run under Icarus by
tests/rtl/test_icarus.py). Independent of Amaranth's simulator: operands go in through
the host SRAM port, results come back through the host accumulator read port, and every
accumulator word is compared with the functional simulator's semantics (Golden) after
each batch of back-to-back instructions (MM_LW, MM_MUL, MM_OS); cycles are counted from
``accepted`` to ``done`` (the ISA cost) and to the last accumulator write (the cost plus
the ISA's latency: an MM_OS's drain writes, ``os_we``, come R cycles after its done).

Configuration comes from the MXU_CFG environment variable (JSON: rows, cols, dtype,
sram_words, acc_words, count, seed).
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from chipforge.isa import Opcode, cycles, latency
from chipforge.rtl._config import CoreConfig, payload
from chipforge.rtl._golden import (
    Golden,
    InstrGen,
    random_acc,
    random_elems,
    same_words,
)


def _pack(values, bits: int) -> int:
    return sum(int(v) << (i * bits) for i, v in enumerate(values))


class Bench:
    def __init__(self, dut, cfg: CoreConfig) -> None:
        self.dut, self.cfg, self.cycle = dut, cfg, 0

    async def step(self) -> dict[str, int]:
        """End this cycle: outputs as sampled at the coming rising edge; the next cycle's
        inputs may be set when this returns (at the falling edge)."""
        await ReadOnly()
        d = self.dut
        out = {n: int(getattr(d, n).value)
               for n in ("accepted", "done", "acc_we", "os_we", "w_load", "busy")}
        out["ready"] = int(d.instr__ready.value)
        rdata = d.h_acc_rdata.value
        out["rdata"] = int(rdata) if rdata.is_resolvable else -1
        await FallingEdge(d.clk)
        self.cycle += 1
        return out

    async def write_rows(self, prefix: str, words: np.ndarray, banks: int, bits: int) -> None:
        d = self.dut
        getattr(d, f"{prefix}_mask").value = (1 << banks) - 1
        for row in range(words.size // banks):
            getattr(d, f"{prefix}_en").value = 1
            getattr(d, f"{prefix}_addr").value = row * banks
            getattr(d, f"{prefix}_data").value = _pack(words[row * banks:(row + 1) * banks],
                                                       bits)
            await self.step()
        getattr(d, f"{prefix}_en").value = 0

    async def read_acc(self) -> np.ndarray:
        banks, rows = self.cfg.acc_banks, self.cfg.acc_words // self.cfg.acc_banks
        got: list[int] = []
        for row in range(rows + 1):  # one cycle of read latency
            self.dut.h_acc_raddr.value = (row % rows) * banks
            rdata = (await self.step())["rdata"]
            assert rdata >= 0, "the accumulator read back X/Z bits"
            if row:
                got += [(rdata >> (32 * i)) & 0xFFFFFFFF for i in range(banks)]
        return np.array(got, np.uint32)

    async def run_batch(self, words: list[int], is_os: list[bool]) -> list[list[int]]:
        """[accept, done, last write cycle, writes] per instruction, pushed back to back;
        drain writes belong to the last MM_OS done before them; ends when busy falls."""
        d, pending, out, cur, drain, busy = self.dut, list(words), [], None, None, 1
        while len(out) < len(words) or busy:
            d.instr__valid.value = int(bool(pending))
            if pending:
                d.instr__payload.value = pending[0]
            s = await self.step()
            if pending and s["ready"]:
                pending.pop(0)
            now = self.cycle - 1
            if cur is not None and (s["acc_we"] or s["w_load"]):
                cur[2], cur[3] = now, cur[3] + 1
            if drain is not None and s["os_we"]:
                drain[2], drain[3] = now, drain[3] + 1
            busy = s["busy"]
            if s["done"] and cur is not None:
                cur[1] = now
                drain = cur if is_os[len(out)] else drain
                out.append(cur)
                cur = None
            if s["accepted"]:
                cur = [now, -1, -1, 0]
        d.instr__valid.value = 0
        return out


@cocotb.test()
async def random_instructions(dut) -> None:
    spec = json.loads(os.environ["MXU_CFG"])
    cfg = CoreConfig(spec["rows"], spec["cols"], spec["dtype"], spec["sram_words"],
                     spec["acc_words"])
    rng = np.random.default_rng(spec["seed"])
    gen, gold, bench = InstrGen(cfg, rng), Golden.of(cfg), Bench(dut, cfg)
    timing, layout = cfg.timing(), cfg.layout()
    Clock(dut.clk, 10, unit="ns").start()
    for name in ("instr__valid", "instr__payload", "h_sram_en", "h_sram_addr", "h_sram_data",
                 "h_sram_mask", "h_acc_en", "h_acc_addr", "h_acc_data", "h_acc_mask",
                 "h_acc_raddr"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    acc0 = random_acc(cfg, rng)
    await bench.write_rows("h_acc", acc0, cfg.acc_banks, 32)
    gold.set_acc(acc0)
    uint = np.uint16 if cfg.itemsize == 2 else np.uint8
    done = mismatches = cycle_errors = 0
    while done < spec["count"]:
        batch = [gen.next() for _ in range(min(spec["count"] - done, int(rng.integers(1, 7))))]
        elems = random_elems(cfg, rng, cfg.sram_words)
        await bench.write_rows("h_sram", elems.view(uint), cfg.banks, cfg.fmt.bits)
        gold.set_sram(elems)
        words = [layout.const(payload(cfg, i)).as_value().value for i in batch]
        got = await bench.run_batch(words, [i.op is Opcode.MM_OS for i in batch])
        for j, (ins, (acc_c, done_c, last, writes)) in enumerate(zip(batch, got)):
            with np.errstate(all="ignore"):  # inf/NaN operands are part of the test
                gold.run(ins)
            want = cfg.rows if ins.op is Opcode.MM_LW else ins.named["m"]
            cost = cycles(ins, timing)
            ok = (done_c - acc_c == cost and writes == want
                  and (want == 0 or last - acc_c == cost + latency(ins, timing)))
            if j:
                ok &= acc_c - got[j - 1][0] == cycles(batch[j - 1], timing)
            if not ok:
                cycle_errors += 1
                dut._log.error(f"cycles: {ins} rtl {done_c - acc_c} "
                               f"model {cycles(ins, timing)} writes {writes}")
        rtl, ref = await bench.read_acc(), gold.acc_words()
        bad = int((~same_words(rtl, ref, cfg.fmt.is_float)).sum())
        if bad:
            mismatches += bad
            dut._log.error(f"batch ending at {done + len(batch)}: {bad} words differ")
            await bench.write_rows("h_acc", ref, cfg.acc_banks, 32)  # resynchronize
        done += len(batch)
    dut._log.info(f"{done} instructions, {mismatches} mismatched words, "
                  f"{cycle_errors} cycle errors")
    assert mismatches == 0 and cycle_errors == 0
