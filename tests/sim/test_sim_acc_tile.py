"""Large MM_MULs are deferred and batched by A operand (CoreState.defer_mm) and go
through the core's transposed accumulator tiles (CoreState.acc_t): every later read or
write of accumulator memory must see the same values as if each MM_MUL had written the
memory directly when it ran."""

from __future__ import annotations

import numpy as np
from simkit import A_DRAM, A_SRAM, B_DRAM, B_SRAM, DST_SRAM, acc, ins, load_bytes, run_on_sram, sram

from chipforge.isa import Dtype, Flag, Opcode
from chipforge.numerics import cast, matmul_acc
from chipforge.sim._state import CoreState

RNG = np.random.default_rng(23)
BF, ACCF = Dtype.BF16, Flag.ACCUMULATE
M, K, N = 64, 32, 128  # 8192 outputs: above the transposed-tile threshold


def bf16(shape, scale: float = 1.0) -> np.ndarray:
    return cast((RNG.standard_normal(shape) * scale).astype(np.float32), "bf16")


def operands(parts: int) -> tuple[np.ndarray, np.ndarray, list, list]:
    """``parts`` A panels [M, K] stacked and ``parts`` weight tiles [K, N] stacked."""
    a = [bf16((M, K)) for _ in range(parts)]
    w = [bf16((K, N)) for _ in range(parts)]
    return np.concatenate(a), np.concatenate(w), a, w


def lw(p: int) -> object:
    return ins(Opcode.MM_LW, B_SRAM + p * K * N * 2, K, N, N, dtype=BF)


def mul(p: int, word: int, stride: int = N, flags: Flag = Flag.NONE) -> object:
    return ins(Opcode.MM_MUL, word, A_SRAM + p * M * K * 2, M, K, K, stride, dtype=BF,
               flags=flags)


def test_accumulated_tile_matches_float32_adds_and_v_acc_reads_it():
    a, w, ap, wp = operands(3)
    body = []
    for p in range(3):
        body += [lw(p), mul(p, 0, flags=ACCF if p else Flag.NONE)]
    body.append(ins(Opcode.V_ACC, DST_SRAM, 0, M, N, N, N, dtype=BF, dtype_a=Dtype.FP32,
                    imm=0.5))
    res = run_on_sram(body, a, w)
    want = matmul_acc(ap[0], wp[0])
    for p in (1, 2):
        want = want + matmul_acc(ap[p], wp[p])
    assert np.array_equal(acc(res, 0, M * N).reshape(M, N), want)
    got = sram(res, DST_SRAM, M * N, np.uint16).reshape(M, N)
    assert np.array_equal(got, cast(want * np.float32(0.5), "bf16").view(np.uint16))


def test_switching_tiles_strided_rows_and_small_mm_muls_see_current_values():
    a, w, ap, wp = operands(3)
    stride = N + 16  # gaps between rows must keep their (earlier) values
    small = ins(Opcode.MM_MUL, 5, A_SRAM, 2, K, K, N, dtype=BF, flags=ACCF)  # 256 outputs
    body = [ins(Opcode.V_FILL, DST_SRAM, 1, 8, 8, dtype=Dtype.FP32, imm=0.0),
            lw(0), mul(0, 0, stride),                   # tile X (held)
            lw(1), mul(1, 20000),                       # tile Y: X written back
            lw(2), mul(2, 0, stride, ACCF),             # X again: read back, accumulate
            mul(2, 20000, flags=ACCF),                  # Y again
            lw(0), small,                               # a small one inside X's words
            ins(Opcode.V_ACC, DST_SRAM, 20000, M, N, N, N, dtype=Dtype.FP32,
                dtype_a=Dtype.FP32, imm=1.0, flags=Flag.CLEAR),  # reads and clears Y
            lw(1), mul(1, 20000, flags=ACCF)]           # Y from zeros
    res = run_on_sram(body, a, w)
    x = matmul_acc(ap[0], wp[0]) + matmul_acc(ap[2], wp[2])
    y = matmul_acc(ap[1], wp[1]) + matmul_acc(ap[2], wp[2])
    want = np.zeros((M, stride), np.float32)
    want[:, :N] = x
    words = want.reshape(-1)  # the small MM_MUL: 2 rows of N words at word 5, stride N
    s = matmul_acc(ap[0][:2], wp[0])
    for r in range(2):
        words[5 + r * N:5 + r * N + N] += s[r]
    assert np.array_equal(acc(res, 0, M * stride).reshape(M, stride), want)
    assert np.array_equal(sram(res, DST_SRAM, M * N, np.float32).reshape(M, N), y)
    assert np.array_equal(acc(res, 20000, M * N).reshape(M, N), matmul_acc(ap[1], wp[1]))


def test_deferred_mm_muls_use_operands_as_they_were_at_issue():
    a, w, ap, wp = operands(3)
    panel, tile = M * K * 2, K * N * 2  # bytes
    body = [lw(0), mul(0, 0),                       # X = a0 @ w0 (deferred)
            lw(1), mul(0, 10000),                   # Y = a0 @ w1: the same A, one batch
            lw(1), mul(0, 20000),                   # Z = a0 @ w1 (a tile loaded twice)
            # overwrite A's panel 0 with panel 1, and weight tile 1 with tile 2, while the
            # batch is pending: the batch keeps the values its MM_MULs read
            load_bytes(A_DRAM + panel, A_SRAM, panel),
            load_bytes(B_DRAM + 2 * tile, B_SRAM + tile, tile),
            lw(1), mul(0, 30000),                   # W = a1 @ w2: a new A, a new batch
            mul(0, 30000, flags=ACCF),              # W += a1 @ w2
            # the weight register keeps what MM_LW loaded when SRAM changes under it
            lw(0), load_bytes(B_DRAM + tile, B_SRAM, tile), mul(0, 40000)]  # V = a1 @ w0
    res = run_on_sram(body, a, w)
    assert np.array_equal(acc(res, 40000, M * N).reshape(M, N), matmul_acc(ap[1], wp[0]))

    def tile_at(word: int) -> np.ndarray:
        return acc(res, word, M * N).reshape(M, N)

    assert np.array_equal(tile_at(0), matmul_acc(ap[0], wp[0]))
    assert np.array_equal(tile_at(10000), matmul_acc(ap[0], wp[1]))
    assert np.array_equal(tile_at(20000), matmul_acc(ap[0], wp[1]))
    w_tile = matmul_acc(ap[1], wp[2])
    assert np.array_equal(tile_at(30000), w_tile + w_tile)


def os_(j: int, word: int, flags: Flag = Flag.NONE) -> object:
    """MM_OS of A panel 0 [M, K] through column block j [K, N] of a B stored [K, 3N]
    (blocks side by side) into accumulator words ``word`` + r * 3N + c."""
    return ins(Opcode.MM_OS, word, A_SRAM, B_SRAM + j * N * 2, M, N, K, K, 3 * N, 3 * N,
               dtype=BF, flags=flags)


def test_deferred_mm_os_batch_adjacent_and_overwritten_b_blocks():
    a, _, ap, _ = operands(1)
    b = bf16((K, 3 * N))
    new_b = bf16((K, 3 * N))
    blocks = [b[:, j * N:(j + 1) * N] for j in range(3)]
    body = [os_(0, 0), os_(1, N), os_(2, 2 * N),            # one batch: B's three blocks
            ins(Opcode.V_ACC, DST_SRAM, 0, M, 3 * N, 3 * N, 3 * N, dtype=Dtype.FP32,
                dtype_a=Dtype.FP32, imm=1.0),                # reads all three
            os_(0, 0, ACCF), os_(1, N, ACCF),               # a second batch, then B changes
            load_bytes(B_DRAM + K * 3 * N * 2, B_SRAM, K * 3 * N * 2),
            os_(2, 2 * N, ACCF),                            # new B values: a new operand
            ins(Opcode.V_ACC, DST_SRAM, 0, M, 3 * N, 3 * N, 3 * N, dtype=Dtype.FP32,
                dtype_a=Dtype.FP32, imm=1.0),                # runs the second batch
            # a third batch reads only the new B (the second must not have cached its
            # mix of old and new blocks as B's operand)
            os_(0, 30000), os_(1, 30000 + N), os_(2, 30000 + 2 * N)]
    res = run_on_sram(body, a, np.concatenate([b, new_b]))
    third = np.concatenate([matmul_acc(ap[0], new_b[:, j * N:(j + 1) * N])
                            for j in range(3)], axis=1)
    assert np.array_equal(acc(res, 30000, M * 3 * N).reshape(M, 3 * N), third)
    first = np.concatenate([matmul_acc(ap[0], w) for w in blocks], axis=1)
    want = first.copy()
    want[:, :2 * N] += first[:, :2 * N]
    want[:, 2 * N:] += matmul_acc(ap[0], new_b[:, 2 * N:])
    assert np.array_equal(acc(res, 0, M * 3 * N).reshape(M, 3 * N), want)
    assert np.array_equal(sram(res, DST_SRAM, M * 3 * N, np.float32).reshape(M, 3 * N), want)


def test_nonfinite_rows_and_overflow_reach_the_accumulators():
    a, w, ap, wp = operands(1)
    a = a.copy()
    a[3, 0] = np.inf
    a[4, :] = cast(np.full(K, 3e38, np.float32), "bf16")
    w = w.copy()
    w[:, 7] = cast(np.full(K, 3e38, np.float32), "bf16")
    res = run_on_sram([lw(0), mul(0, 0)], a, w)
    got = acc(res, 0, M * N).reshape(M, N)
    assert np.array_equal(got, matmul_acc(a, w), equal_nan=True)
    assert np.isinf(got[4, 7]) and not np.isfinite(got[3]).all()


def test_acc_property_writes_the_held_tile_back():
    c = CoreState(0, 1024)
    f32 = np.dtype(np.float32)
    t = c.acc_t(10, 2, 3, 4, f32, load=False)
    t[...] = np.arange(6, dtype=np.float32).reshape(3, 2)  # [cols, rows]
    assert c.acc_t(10, 2, 3, 4, f32, load=True) is t  # the same tile: no write-back yet
    words = c.acc[:80].view(np.float32)
    assert words[10:13].tolist() == [0.0, 2.0, 4.0] and words[14:17].tolist() == [1, 3, 5]
    assert words[13] == 0.0 and not words[:10].any()
    t2 = c.acc_t(11, 2, 3, 4, f32, load=True)  # overlapping another tile: reads memory
    assert t2[:, 0].tolist() == [2.0, 4.0, 0.0]


def test_int8_tiles_accumulate_int32_wrap_and_v_acc_reads_them():
    a = RNG.integers(-128, 128, (M, 128)).astype(np.int8)
    w = RNG.integers(-128, 128, (128, 64)).astype(np.int8)
    i8 = Dtype.INT8
    body = [ins(Opcode.MM_LW, B_SRAM, 128, 64, 64, dtype=i8),
            ins(Opcode.MM_MUL, 0, A_SRAM, M, 128, 128, 64, dtype=i8),
            ins(Opcode.MM_MUL, 0, A_SRAM, M, 128, 128, 64, dtype=i8, flags=ACCF),
            ins(Opcode.V_ACC, DST_SRAM, 0, M, 64, 64, 64, dtype=Dtype.FP32,
                dtype_a=Dtype.INT32, imm=0.5)]
    res = run_on_sram(body, a, w)
    want = 2 * (a.astype(np.int64) @ w.astype(np.int64))
    assert np.array_equal(acc(res, 0, M * 64, np.int32).reshape(M, 64), want)
    assert np.array_equal(sram(res, DST_SRAM, M * 64, np.float32).reshape(M, 64),
                          (want.astype(np.float32) * np.float32(0.5)))
    # 1100 x 128 * 127 * 127 = 2.27e9 > 2**31: two's-complement wrap
    a, w = np.full((M, 128), 127, np.int8), np.full((128, 64), 127, np.int8)
    body = [ins(Opcode.MM_LW, B_SRAM, 128, 64, 64, dtype=i8)]
    body += [ins(Opcode.MM_MUL, 0, A_SRAM, M, 128, 128, 64, dtype=i8,
                 flags=ACCF if i else Flag.NONE) for i in range(1100)]
    res = run_on_sram(body, a, w)
    wrapped = (1100 * 128 * 127 * 127 + 2**31) % 2**32 - 2**31
    assert (acc(res, 0, M * 64, np.int32) == wrapped).all()


def test_reloading_the_same_bytes_keeps_decoded_operands():
    from simkit import CHIP

    from chipforge.arch import load_chip
    from chipforge.isa import Instr
    from chipforge.machine import CoreTiming
    from chipforge.sim._semantics import Machine, dma_load

    x = bf16((M, K))
    dram = np.zeros(4 * x.nbytes, np.uint8)
    dram[:x.nbytes] = x.view(np.uint8).ravel()
    dram[x.nbytes:2 * x.nbytes] = bf16((M, K)).view(np.uint8).ravel()  # other values
    core = CoreState(0, 1 << 20)
    m = Machine(CoreTiming.of(load_chip(CHIP)), dram, [core])

    def load(dram_addr: int) -> None:
        dma_load(m, core, Instr(Opcode.DMA_LOAD, (dram_addr, 0, M, K, K, K), dtype=BF))

    def operand():
        view = core.sram[:x.nbytes].view(x.dtype).reshape(M, K)
        return core.operand(view, 0, K, axis=1)

    load(0)
    first = operand()
    load(0)  # a reloaded tile: the same bytes
    assert operand() is first
    load(x.nbytes)  # new values: decoded again
    again = operand()
    assert again is not first
    assert np.array_equal(again.f64, dram[x.nbytes:2 * x.nbytes].view(x.dtype).reshape(M, K)
                          .astype(np.float64))
