"""The collective model: NCCL's (algorithm, protocol) search against hand-derived facts.
The held-out error on the measured NCCL tables is tests/perf/test_held_out.py's."""

from __future__ import annotations

import pytest

from chipforge.arch import load_chip
from chipforge.ops import all_gather, all_reduce, all_to_all
from chipforge.perf import DEFAULT, estimate
from chipforge.perf._collective import best_option, option_seconds, options, switch_reduces

A100 = load_chip("a100-sxm")
H100 = load_chip("h100-sxm")
def _per_direction(chip, eff=DEFAULT) -> float:
    return chip.links.total_bytes_per_s / 2 * eff.link_efficiency


def test_large_ring_all_reduce_moves_two_n_minus_one_over_n_of_the_buffer() -> None:
    size = 2**30  # 1 GiB of fp16
    for n in (2, 4, 8):
        op = all_reduce(size // 2, n, "fp16")
        opt = best_option(op, A100, DEFAULT)  # no in-switch reduction on A100
        assert opt.name == "ring Simple"
        assert opt.wire_bytes == pytest.approx(2 * (n - 1) / n * size)
        ideal = 2 * (n - 1) / n * size / _per_direction(A100)
        fixed = DEFAULT.launch_overhead_s + opt.latency_s
        assert estimate(op, A100).seconds == pytest.approx(fixed + ideal, rel=1e-9)
        assert fixed < 0.02 * ideal  # bandwidth-bound


def test_ll_halves_the_bandwidth_and_ll128_keeps_120_of_128() -> None:
    op = all_gather(2**28, 8, "fp16")
    by = {o.name: o for o in options(op, A100, DEFAULT)}
    wire = 7 / 8 * 2**29

    def transfer(name: str) -> float:
        o = by[name]
        return option_seconds(o, A100, DEFAULT) - DEFAULT.launch_overhead_s - o.latency_s
    assert transfer("ring LL") == pytest.approx(2 * wire / _per_direction(A100))
    assert transfer("ring LL128") == pytest.approx(128 / 120 * wire / _per_direction(A100))


def test_small_messages_take_ll_one_hop_latency_per_ring_step() -> None:
    t = {n: estimate(all_reduce(256, n, "fp16"), A100).seconds for n in (2, 4, 8)}
    assert best_option(all_reduce(256, 8, "fp16"), A100, DEFAULT).name == "ring LL"
    # 2(n-1) steps: 2 -> 6 -> 14, each link_latency_s; transfer of 512 B negligible
    assert t[4] - t[2] == pytest.approx(4 * DEFAULT.link_latency_s, rel=0.01)
    assert t[8] - t[4] == pytest.approx(8 * DEFAULT.link_latency_s, rel=0.01)


def test_in_switch_reduction_only_where_the_switch_reduces_and_not_for_int8() -> None:
    assert switch_reduces(H100) and not switch_reduces(A100)
    n, size = 8, 2**30
    fp16 = best_option(all_reduce(size // 2, n, "fp16"), H100, DEFAULT)
    assert fp16.name == "nvls Simple"
    assert fp16.wire_bytes == pytest.approx(size * (1 + 1 / n))  # out: all, back: 1/n
    assert best_option(all_reduce(size, n, "int8"), H100, DEFAULT).name == "ring Simple"
    # on two GPUs the ring's n-1/n x 2 = 1 buffer beats the switch's 1.5
    assert best_option(all_reduce(size // 2, 2, "fp16"), H100, DEFAULT).name == "ring Simple"
    assert not any(o.name.startswith("nvls") for o in options(
        all_reduce(size // 2, n, "fp16"), A100, DEFAULT))


def test_all_to_all_latency_does_not_grow_with_peers() -> None:
    t = [estimate(all_to_all(256, n, "fp16"), H100).seconds for n in (2, 4, 8)]
    assert t[0] == pytest.approx(t[2], rel=0.01)


def test_our_chips_run_collectives() -> None:
    for name in ("forge-t1", "forge-i1"):
        chip = load_chip(name)
        small = estimate(all_reduce(1024, 8, "bf16"), chip).seconds
        big = estimate(all_reduce(2**28, 8, "bf16"), chip).seconds
        assert 0 < small < big
