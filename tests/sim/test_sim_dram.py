"""How simulate() sets up a run: DRAM's initial image, and BLAS threads left as found."""

from __future__ import annotations

import numpy as np
import pytest
from simkit import ins, program

from chipforge.isa import Opcode
from chipforge.sim import simulate


def test_dram_is_zero_outside_the_init_segments_and_later_segments_win() -> None:
    junk = np.full(4096, 0xAB, np.uint8)  # freed memory the DRAM buffer may reuse
    del junk
    prog = program([[ins(Opcode.HALT)]], dram_bytes=4096)
    prog.init.update({256: b"\x02" * 32, 64: b"\x01" * 64, 272: b"\x03" * 8})
    want = np.zeros(4096, np.uint8)  # by hand: zeros, then each segment in dict order
    want[256:288] = 2
    want[64:128] = 1
    want[272:280] = 3
    dram = simulate(prog, prog.chip).machine.dram
    np.testing.assert_array_equal(dram, want)


def test_simulate_leaves_the_blas_thread_count_as_it_found_it() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        simulate(program([[ins(Opcode.HALT)]]), program([[]]).chip)
        assert blas_threads() == before
