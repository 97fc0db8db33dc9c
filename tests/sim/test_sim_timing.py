"""Timing: hand-derived cycle counts, DMA/MXU overlap, barriers, deadlocks, trace JSON."""

from __future__ import annotations

import json
from math import ceil

import numpy as np
import pytest
from simkit import CHIP, T, ins, program

from chipforge.isa import Dtype, Instr, Opcode, cycles, latency
from chipforge.machine import BARRIER_CYCLES, DMA_ISSUE_CYCLES, VECTOR_PIPELINE_CYCLES
from chipforge.sim import SimError, simulate

BF = Dtype.BF16
# one bf16 tile: the DMA engine is busy for DO cycles, the transfer completes L later
DO = DMA_ISSUE_CYCLES + ceil(128 * 128 * 2 / T.dma_bytes_per_cycle)
L = T.dram_latency_cycles
D = DO + L
R = T.rows  # MM_LW: one weight row per cycle


def mm_mul_cycles(m: int) -> int:
    return m + T.rows + T.array_cols(BF.name_str) - 2


def load(sram: int = 0, **kw) -> Instr:
    return ins(Opcode.DMA_LOAD, 0, sram, 128, 128, 128, 128, dtype=BF, **kw)


def test_dma_then_matmul_through_a_semaphore():
    # pc0 DMA dispatched at 0, occupies the engine [0, DO) and completes at D = DO + L;
    # pc1 MM_LW dispatched at 1 waits for semaphore 0 (reaches 1 at D), runs [D, D + R);
    # pc2 MM_MUL dispatched at 2, MXU busy until D + R, runs [D + R, D + R + M). The front
    # end's dispatch offsets (1, 2) are hidden.
    code = [load(signal=0, comment="load: A"),
            ins(Opcode.MM_LW, 0, 128, 128, 128, dtype=BF, wait=(0, 1), comment="mm: weights"),
            ins(Opcode.MM_MUL, 0, 0, 256, 128, 128, 128, dtype=BF, comment="mm: stream"),
            ins(Opcode.HALT)]
    assert DO == cycles(code[0], T) and L == latency(code[0], T) and R == cycles(code[1], T)
    res = simulate(program([code]), CHIP, trace=True)
    assert res.cycles == D + R + mm_mul_cycles(256)
    assert res.busy[(0, "DMA")] == DO and res.busy[(0, "MXU")] == R + mm_mul_cycles(256)
    assert res.utilization[(0, "MXU")] == pytest.approx((R + mm_mul_cycles(256)) / res.cycles)
    assert res.top_ops() == sorted([("load", DO), ("mm", R + mm_mul_cycles(256))],
                                   key=lambda kv: -kv[1])
    assert res.seconds == pytest.approx(res.cycles / T.clock_hz)
    assert res.instructions == 4
    starts = {(c, pc): (s, d) for c, _, pc, s, d in res.events}
    assert starts[(0, 1)] == (D, R) and starts[(0, 2)] == (D + R, mm_mul_cycles(256))


def test_effects_happen_at_start_so_a_missing_semaphore_reads_stale_sram():
    x = np.ones((128, 128), np.float32)
    mm = [ins(Opcode.MM_LW, 0, 128, 128, 128, dtype=BF),
          ins(Opcode.MM_MUL, 0, 0, 1, 128, 128, 128, dtype=BF), ins(Opcode.HALT)]
    tensors = {"x": (0, (128, 128), "bf16")}
    # the load starts at 0, before MM_LW starts at 1: its data is there (effects at start)
    res = simulate(program([[load()] + mm], tensors), CHIP, {"x": x})
    assert res.cycles == max(D, 1 + R + mm_mul_cycles(1))
    assert res.machine.cores[0].acc[:4].view(np.float32)[0] == 128.0
    # queued behind another load it starts at DO, after MM_LW (cycle 2): stale zeros
    res = simulate(program([[load(sram=65536), load()] + mm], tensors), CHIP, {"x": x})
    assert res.machine.cores[0].acc[:4].view(np.float32)[0] == 0.0


def pipeline(n: int, m: int, overlap: bool) -> list[Instr]:
    """n tiles: load tile i (DMA), weights + stream (MXU). Overlapped: double buffers, load
    i waits for the matmul of tile i - 2; serial: load i waits for the matmul of i - 1."""
    code = []
    for i in range(n):
        back = i - 1 if overlap else i
        code += [load(sram=(i % 2) * 32768, signal=0,
                      wait=(1, back) if back > 0 else None),
                 ins(Opcode.MM_LW, (i % 2) * 32768, 128, 128, 128, dtype=BF, wait=(0, i + 1)),
                 ins(Opcode.MM_MUL, 0, 0, m, 128, 128, 128, dtype=BF, signal=1)]
    return code + [ins(Opcode.HALT)]


def test_mm_os_frees_the_array_at_its_cost_and_completes_a_drain_later():
    """MM_OS occupies the MXU R + C + k - 2 cycles (SCALE-Sim's os fold) and completes R
    cycles later, when its outputs have drained into the accumulators: the next MM_OS
    starts at the cost, a V_ACC waiting on the signal at cost + R."""
    c = T.array_cols(BF.name_str)
    os1, os2 = R + c + 64 - 2, R + c + 32 - 2
    mm = [ins(Opcode.MM_OS, 0, 0, 0, 128, c, 64, 64, c, c, dtype=BF, signal=0),
          ins(Opcode.MM_OS, 0, 0, 0, 128, c, 32, 32, c, c, dtype=BF, signal=1)]
    read = [ins(Opcode.V_ACC, 0, 0, 128, c, c, c, dtype=BF, dtype_a=Dtype.FP32, imm=1.0,
                wait=(s, 1)) for s in (0, 1)]
    assert [cycles(i, T) for i in mm] == [os1, os2]
    v = cycles(read[0], T)
    res = simulate(program([mm + read + [ins(Opcode.HALT)]]), CHIP, functional=False,
                   trace=True)
    starts = {pc: s for _, _, pc, s, _ in res.events}
    assert starts[1] == os1  # the array is free at the cost: back-to-back folds
    assert starts[2] == os1 + R  # the first drain done
    assert starts[3] == max(os1 + R + v, os1 + os2 + R)
    assert res.cycles == starts[3] + v
    assert res.busy[(0, "MXU")] == os1 + os2


def test_double_buffering_overlaps_dma_with_the_matrix_unit():
    n, m = 8, 1024
    mxu = R + mm_mul_cycles(m)
    assert mxu > D  # matrix-bound: loads hide behind the MXU once it starts
    over = simulate(program([pipeline(n, m, True)]), CHIP, functional=False)
    serial = simulate(program([pipeline(n, m, False)]), CHIP, functional=False)
    assert over.cycles == D + n * mxu  # ~max: only the first load is exposed
    assert serial.cycles == n * (D + mxu)  # the sum
    assert over.busy == serial.busy


def test_functional_false_times_identically():
    code = pipeline(4, 256, True)
    a = simulate(program([code]), CHIP)
    b = simulate(program([code]), CHIP, functional=False)
    assert (a.cycles, a.busy, a.op_cycles, a.instructions) == \
        (b.cycles, b.busy, b.op_cycles, b.instructions)
    assert b.outputs == {} and b.machine is None


def test_barrier_rendezvous_of_two_cores():
    v = VECTOR_PIPELINE_CYCLES + ceil(512 / T.lanes)
    fill = ins(Opcode.V_FILL, 0, 1, 512, 512, imm=1.0)
    core0 = [load(), ins(Opcode.BARRIER, 0), fill, ins(Opcode.HALT)]
    core1 = [fill, ins(Opcode.BARRIER, 0), fill, ins(Opcode.HALT)]
    res = simulate(program([core0, core1]), CHIP, trace=True)
    # core 0 arrives at D (its DMA completes), core 1 at v; release at D + BARRIER_CYCLES
    release = D + BARRIER_CYCLES
    assert res.cycles == release + v
    starts = {(c, pc): s for c, _, pc, s, _ in res.events}
    assert starts[(0, 2)] == starts[(1, 2)] == release
    ctrl = [(c, s, d) for c, u, pc, s, d in res.events if u == 3]
    assert sorted(ctrl) == [(0, D, BARRIER_CYCLES), (1, v, release - v)]


def test_dma_transfers_overlap_their_latency():
    """Back-to-back loads: the engine streams them, only the last one's latency shows."""
    code = [load(sram=i * 32768) for i in range(4)] + [ins(Opcode.HALT)]
    res = simulate(program([code]), CHIP, functional=False)
    assert res.cycles == 4 * DO + L
    assert res.busy[(0, "DMA")] == 4 * DO


def test_two_waits_must_both_be_met():
    if "wait2" not in Instr.__dataclass_fields__:
        pytest.skip("this ISA has one wait per instruction")
    fill = ins(Opcode.V_FILL, 0, 1, 8, 8, imm=1.0, wait=(0, 1), wait2=(1, 1))
    code = [load(signal=0), ins(Opcode.DMA_LOAD, 0, 0, 256, 128, 128, 128, dtype=BF,
                                signal=1), fill, ins(Opcode.HALT)]
    res = simulate(program([code]), CHIP, functional=False)
    # the second load starts when the engine frees at DO and completes L after its own
    # occupancy; both waits are met then
    do2 = DMA_ISSUE_CYCLES + ceil(256 * 128 * 2 / T.dma_bytes_per_cycle)
    assert res.cycles == DO + do2 + L + cycles(fill, T)


@pytest.mark.parametrize("cores, message", [
    ([[ins(Opcode.V_FILL, 0, 1, 8, 8, wait=(3, 1)), ins(Opcode.HALT)]],
     "deadlock: core 0 pc 0 V_FILL waits on semaphore 3 >= 1, which reaches only 0"),
    ([[ins(Opcode.V_FILL, 0, 1, 8, 8, wait=(1, 1)), ins(Opcode.V_FILL, 0, 1, 8, 8, signal=1)]],
     "deadlock: core 0 pc 0 V_FILL waits on semaphore 1 >= 1, which reaches only 0"),
    ([[ins(Opcode.V_FILL, 0, 1, 8, 8, signal=2), ins(Opcode.V_FILL, 0, 1, 8, 8, wait=(2, 2))]],
     "deadlock: core 0 pc 1 V_FILL waits on semaphore 2 >= 2, which reaches only 1"),
    ([[ins(Opcode.BARRIER, 0), ins(Opcode.HALT)], [ins(Opcode.HALT)]],
     "deadlock: core 0 pc 0 waits at BARRIER #0, but core 1 ended after 0 barrier(s): every "
     "core must run the same number of barriers"),
    ([[ins(Opcode.BARRIER, 1)], [ins(Opcode.NOP), ins(Opcode.BARRIER, 2)]],
     "core 1 pc 1 BARRIER: barrier_id=2, expected core 0's barrier_id=1 (barrier #0 of "
     "every core)"),
])
def test_deadlocks_are_reported_not_hung(cores, message):
    with pytest.raises(SimError) as err:
        simulate(program(cores), CHIP)
    assert str(err.value) == message


def test_halt_ends_the_stream_and_nop_takes_a_cycle():
    code = [ins(Opcode.NOP), ins(Opcode.NOP), ins(Opcode.HALT),
            ins(Opcode.V_FILL, 0, 1, 8, 8, wait=(9, 1))]  # never issued
    res = simulate(program([code]), CHIP)
    assert res.cycles == 3 and res.instructions == 3


def test_trace_is_valid_chrome_trace_event_json(tmp_path):
    code = pipeline(2, 128, True)
    res = simulate(program([code, code]), CHIP, trace=True)
    path = res.write_trace(tmp_path / "t.json")
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    meta = [e for e in events if e["ph"] == "M"]
    spans = [e for e in events if e["ph"] == "X"]
    assert len(spans) == 2 * (len(code) - 1) and len(meta) + len(spans) == len(events)
    names = {}
    for e in meta:
        assert set(e) >= {"name", "ph", "pid", "args"}
        if e["name"] == "process_name":
            names[e["pid"]] = e["args"]["name"]
        elif e["name"] == "thread_name":
            names[(e["pid"], e["tid"])] = e["args"]["name"]
    assert names[0] == "core 0" and names[1] == "core 1"
    us = 1e6 / T.clock_hz
    for e in spans:
        assert isinstance(e["name"], str) and isinstance(e["pid"], int)
        assert isinstance(e["tid"], int) and e["ts"] >= 0 and e["dur"] > 0
        assert names[(e["pid"], e["tid"])] in ("DMA", "MXU", "VEC")
        assert e["dur"] == pytest.approx(e["args"]["cycles"] * us)
        assert e["ts"] + e["dur"] <= res.cycles * us * (1 + 1e-12)
    assert max(e["ts"] + e["dur"] for e in spans) == pytest.approx(res.cycles * us)


def test_no_trace_kept_unless_asked():
    res = simulate(program([[ins(Opcode.HALT)]]), CHIP)
    assert res.events is None
    with pytest.raises(SimError, match="trace=True"):
        res.write_trace("never.json")
