"""The fused MoE op: its FLOPs and bytes by hand, the collector's token loads against a
step-by-step re-enactment of the collector's loops, and the op-string round trip."""

from __future__ import annotations

import numpy as np
import pytest

from chipforge.errors import OpSyntaxError
from chipforge.ops import MoE, moe, parse_op
from chipforge.ops._moe import (
    _fill_up,
    _round_robin_add,
    balanced_loads,
    power_law_loads,
)


@pytest.mark.parametrize("op", [
    moe(4096, 2048, 1536, 8, 128, tp=2, ep=4),
    moe(1, 1024, 2688, 22, 512, tp=2, ep=128, distribution="power_law_1.01", gated=False,
        dtype="fp8_e4m3"),
    moe(16, 7168, 2048, 8, 256, distribution="power_law_1.2", name="layer0.moe"),
])
def test_describe_round_trips(op):
    back = parse_op(op.describe())
    assert back == op and isinstance(back, MoE)
    assert back.gated is op.gated and back.distribution == op.distribution


def test_describe_text():
    assert moe(8, 64, 32, 2, 4, ep=2).describe() == (
        "moe dtype=bf16 tokens=8 hidden=64 inter=32 topk=2 experts=4 tp=1 ep=2 "
        "distribution=balanced gated=True")


def test_balanced_flops_by_hand():
    # tokens a multiple of experts: every expert gets tokens*topk/experts pairs exactly, and
    # a rank holds experts/ep of them; gated: up 2*inter/tp columns + down inter/tp
    t, h, inter, k, e, tp, ep = 1024, 512, 1024, 8, 64, 2, 4
    op = moe(t, h, inter, k, e, tp=tp, ep=ep)
    assert op.loads == ((t * k // e,) * (e // ep),)
    assert op.flops == 2 * t * k * h * (3 * inter) / (tp * ep)
    plain = moe(t, h, inter, k, e, tp=tp, ep=ep, gated=False)
    assert plain.flops == 2 * t * k * h * (2 * inter) / (tp * ep)


def test_ep_doubling_halves_local_expert_weights():
    def local_weights(ep: int) -> float:
        op = moe(4096, 2048, 1536, 8, 128, tp=2, ep=ep)
        return op.local_experts * op.expert_weight_bytes

    assert local_weights(4) == local_weights(2) / 2
    # one expert's weights: (2 * 1536/2 + 1536/2) x 2048 bf16 elements
    assert moe(1, 2048, 1536, 1, 8, tp=2).expert_weight_bytes == 3 * 768 * 2048 * 2
    assert moe(1, 2048, 1536, 1, 8, tp=2, dtype="fp8_e4m3",
               gated=False).expert_weight_bytes == 2 * 768 * 2048


def test_balanced_loads_of_one_token_by_hand():
    # collector's balanced_logits: stride ceil(512/22) = 24, token 0 picks experts 0, 24,
    # ..., 504; on 256 ranks rank 0 holds experts 0 and 1: one pair, on expert 0
    assert balanced_loads(1, 512, 22, 256) == (1, 0)
    # 4 tokens (fewer than the stride): token t's i-th expert is (6t + 24i) mod 512; of
    # rank 0's experts 0..7: token 0 picks 0, token 1 picks 6, token 2's last (i = 21)
    # wraps 516 -> 4, token 3's wraps to 10
    assert balanced_loads(4, 512, 22, 64) == (1, 0, 0, 0, 1, 0, 1, 0)
    assert sum(balanced_loads(4, 512, 22, 1)) == 88


def _collector_add(loads: np.ndarray, amount: int, bound: int) -> None:
    """The collector's _round_robin_adjust_per_rank (step +1), one unit at a time."""
    while amount > 0:
        progressed = False
        for row in loads:
            valid = np.flatnonzero(row < bound)
            if valid.size == 0:
                continue
            row[valid[int(np.argmin(row[valid]))]] += 1
            amount -= 1
            progressed = True
            if amount == 0:
                break
        if not progressed:
            break


@pytest.mark.parametrize("seed", range(20))
def test_round_robin_closed_form_matches_the_collectors_loop(seed):
    rng = np.random.default_rng(seed)
    ranks, local, bound = int(rng.integers(1, 6)), int(rng.integers(1, 9)), 40
    loads = rng.integers(0, bound + 1, size=(ranks, local))
    amount = int(rng.integers(0, int((bound - loads).sum()) + 1))
    expected = loads.copy()
    _collector_add(expected, amount, bound)
    _round_robin_add(loads, amount, bound)
    assert (loads == expected).all()


def test_fill_up_ties_go_to_the_first_index():
    values = np.array([3, 1, 1, 5])
    _fill_up(values, 3, 10)  # 1,1 -> 2,2 (2 units), then the first 2 -> 3
    assert values.tolist() == [3, 3, 2, 5]


@pytest.mark.parametrize(("tokens", "ep"), [(1, 1), (16, 8), (512, 8), (4096, 64),
                                            (16384, 2)])
@pytest.mark.parametrize("alpha", [1.01, 1.2])
def test_power_law_loads_obey_the_collectors_bounds(tokens, ep, alpha):
    experts, topk = 512, 22
    draws = power_law_loads(tokens, experts, topk, ep, alpha)
    assert len(draws) == 5
    for loads in draws:
        assert len(loads) == experts // ep
        assert max(loads) <= tokens  # a token picks an expert at most once
        # the straggler rank carries at least the mean share, at most every pair
        assert tokens * topk / ep <= sum(loads) <= tokens * topk
        if ep == 1:
            assert sum(loads) == tokens * topk
    assert draws == power_law_loads.__wrapped__(tokens, experts, topk, ep, alpha)


def test_power_law_straggler_is_heavier_than_balanced():
    skewed = moe(8192, 1024, 2688, 22, 512, ep=8, distribution="power_law_1.2")
    even = moe(8192, 1024, 2688, 22, 512, ep=8)
    assert even.routed_pairs == 8192 * 22 / 8
    assert skewed.routed_pairs > 1.1 * even.routed_pairs


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"distribution": "zipf"}, "moe: distribution='zipf'; expected 'balanced' or "
     "'power_law_<alpha>' with alpha > 1 (e.g. power_law_1.2)"),
    ({"distribution": "power_law_1"}, "moe: distribution='power_law_1'; expected"),
    ({"ep": 3}, "moe: ep=3 does not divide experts=8"),
    ({"tp": 3}, "moe: tp=3 does not divide inter=64"),
    ({"topk": 9}, "moe: topk=9 exceeds experts=8"),
    ({"tokens": 0}, "moe: tokens must be a positive integer, got 0"),
])
def test_invalid_moe_is_refused(kwargs, message):
    args = {"tokens": 4, "hidden": 32, "inter": 64, "topk": 2, "experts": 8} | kwargs
    with pytest.raises(OpSyntaxError) as info:
        MoE(**args)
    assert str(info.value).startswith(message)
