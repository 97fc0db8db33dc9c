"""The serving simulator against hand-traced schedules and queueing theory.

Every oracle here is derived by hand (the traces in the comments), from queueing theory
(M/D/1's Pollaczek-Khinchine mean, Little's law) or from conservation of tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from chipforge.cluster import Deployment, LengthDist, Scheduler, Traffic, simulate
from chipforge.errors import ClusterError


@dataclass
class ConstantCost:
    """A hand-made StepCost: every iteration takes ``step_s``; it logs its calls."""

    step_s: float = 0.01
    transfer_s: float = 0.0
    kv_capacity_tokens: int = 1_000_000
    kv_block_tokens: int = 16
    calls: list[tuple] = field(default_factory=list)

    def iteration_s(self, prefill_tokens: int, prefill_attn_ctx: float, decode_seqs: int,
                    decode_ctx_tokens: float) -> float:
        self.calls.append((prefill_tokens, prefill_attn_ctx, decode_seqs, decode_ctx_tokens))
        return self.step_s

    def kv_transfer_s(self, tokens: int) -> float:
        return self.transfer_s


@dataclass
class LinearCost(ConstantCost):
    """Iteration time grows with the batch, as a real engine's does."""

    def iteration_s(self, prefill_tokens: int, prefill_attn_ctx: float, decode_seqs: int,
                    decode_ctx_tokens: float) -> float:
        super().iteration_s(prefill_tokens, prefill_attn_ctx, decode_seqs, decode_ctx_tokens)
        # the cache never holds more than its capacity: decodes alone attend to <= capacity
        assert decode_ctx_tokens <= self.kv_capacity_tokens
        return 0.005 + 2e-5 * prefill_tokens + 1e-4 * decode_seqs + 1e-7 * decode_ctx_tokens


def fixed(n_requests: int, prompt: int, output: int, rate: float | None = None) -> Traffic:
    return Traffic(rate, n_requests, LengthDist.fixed(prompt), LengthDist.fixed(output))


def test_one_request_latencies_by_hand() -> None:
    # a 10-token prompt is one prefill iteration (first token at 0.01 s), then 4 decodes
    result = simulate(Deployment(ConstantCost()), fixed(1, 10, 5))
    assert result.ttft_s[0] == pytest.approx(0.01)
    assert result.e2e_s[0] == pytest.approx(0.05)
    assert result.tpot_s[0] == pytest.approx(0.01)
    assert result.iterations == 5 and result.output_tokens == 5
    assert result.makespan_s == pytest.approx(0.05)


def test_calls_carry_the_attention_work() -> None:
    cost = ConstantCost()
    simulate(Deployment(cost), fixed(1, 10, 3))
    # causal pairs of a 10-token prompt: 10*11/2; decodes attend to 11 then 12 keys
    assert cost.calls == [(10, 55, 0, 0), (0, 0, 1, 11), (0, 0, 1, 12)]


def test_chunked_prefill_splits_a_long_prompt() -> None:
    cost = ConstantCost()
    deployment = Deployment(cost, scheduler=Scheduler(max_batch_tokens=256, max_seqs=16))
    result = simulate(deployment, fixed(1, 1000, 2))
    chunks = [call[0] for call in cost.calls if call[0]]
    assert chunks == [256, 256, 256, 232]  # ceil(1000 / 256) = 4 iterations
    # the chunks' pairs add up to the whole prompt's causal pairs
    assert sum(call[1] for call in cost.calls) == 1000 * 1001 // 2
    assert result.ttft_s[0] == pytest.approx(4 * 0.01)
    assert result.e2e_s[0] == pytest.approx(5 * 0.01)


def test_without_chunking_a_prompt_over_the_budget_is_rejected_and_said() -> None:
    scheduler = Scheduler(max_batch_tokens=256, max_seqs=16, chunked_prefill=False)
    result = simulate(Deployment(ConstantCost(), scheduler=scheduler), fixed(3, 1000, 2))
    assert result.rejected.all() and np.isnan(result.ttft_s).all()
    assert "3 of 3 requests rejected" in result.notes[0]
    assert not result.meets_slo(10.0, 10.0)


def test_preemption_matches_a_hand_trace() -> None:
    # 8 one-token blocks; A and B: 2-token prompts, 4 output tokens (at most 5 KV tokens).
    # it1: both prefill (4 blocks); it2, it3: both decode, one new block each (8 used);
    # it4: A needs a block, B (newest) is preempted with 4 cached tokens (prompt + 2) and
    # 3 tokens generated; A decodes its last token; it5: B prefills 2 + 3 = 5 tokens again
    # and samples its 4th and last token.
    cost = ConstantCost(step_s=1.0, kv_capacity_tokens=8, kv_block_tokens=1)
    result = simulate(Deployment(cost), fixed(2, 2, 4))
    assert cost.calls == [(4, 6, 0, 0), (0, 0, 2, 6), (0, 0, 2, 8), (0, 0, 1, 5),
                          (5, 15, 0, 0)]
    assert result.preemptions == 1 and result.recomputed_tokens == 4
    assert list(result.ttft_s) == [1.0, 1.0]
    assert list(result.e2e_s) == [4.0, 5.0]
    assert result.tpot_s == pytest.approx([1.0, 4.0 / 3.0])


def test_a_request_larger_than_the_cache_is_rejected_not_squeezed() -> None:
    cost = ConstantCost(kv_capacity_tokens=100, kv_block_tokens=16)  # 6 blocks = 96 tokens
    traffic = Traffic(None, 3, LengthDist.uniform(90, 90), LengthDist.fixed(7))  # 96: fits
    assert not simulate(Deployment(cost), traffic).rejected.any()
    result = simulate(Deployment(cost), fixed(3, 90, 8))  # 97 tokens of KV at most
    assert result.rejected.all()
    assert "above the replica's KV capacity of 96 tokens" in result.notes[0]


def test_rate_to_zero_gives_the_single_request_latency() -> None:
    cost = ConstantCost(step_s=0.01)
    scheduler = Scheduler(max_batch_tokens=512, max_seqs=64)
    traffic = Traffic(1e-6, 200, LengthDist.uniform(1, 2000), LengthDist.uniform(1, 300),
                      seed=3)
    result = simulate(Deployment(cost, scheduler=scheduler), traffic)
    prefill_iterations = np.ceil(result.input_len / 512)
    assert result.ttft_s == pytest.approx(0.01 * prefill_iterations)
    assert result.e2e_s == pytest.approx(0.01 * (prefill_iterations + result.output_len - 1))


def batch_means_error(values: np.ndarray, batches: int = 20) -> float:
    """The standard error of a correlated sequence's mean, from batch means."""
    means = np.array([chunk.mean() for chunk in np.array_split(values, batches)])
    return float(means.std(ddof=1) / math.sqrt(batches))


def test_one_sequence_at_a_time_is_an_md1_queue() -> None:
    # max_seqs = 1 and a one-token prompt: each request holds the engine for exactly
    # 10 iterations of 0.01 s (S = 0.1 s), so the replica is an M/D/1 queue; at load 0.6
    # Pollaczek-Khinchine gives a mean wait of rate * S^2 / (2 (1 - load)) = 0.075 s
    service_s, load = 0.1, 0.6
    rate = load / service_s
    deployment = Deployment(ConstantCost(), scheduler=Scheduler(max_seqs=1))
    result = simulate(deployment, fixed(20_000, 1, 10, rate))
    wait = result.ttft_s - 0.01
    expected_wait = rate * service_s ** 2 / (2 * (1 - load))
    assert wait.mean() == pytest.approx(expected_wait, abs=4 * batch_means_error(wait))
    idle = (wait < 1e-9).astype(float)  # an arrival finds the queue empty w.p. 1 - load
    assert idle.mean() == pytest.approx(1 - load, abs=4 * batch_means_error(idle))
    assert result.e2e_s - result.ttft_s == pytest.approx(np.full(20_000, 0.09))


def test_littles_law_holds_in_a_batched_steady_state() -> None:
    rate, n = 15.0, 10_000  # about 60% of what the engine can serve: a steady state
    cost = LinearCost(kv_capacity_tokens=60_000)
    traffic = Traffic(rate, n, LengthDist.lognormal(600, 0.8), LengthDist.lognormal(150, 0.8),
                      seed=7)
    result = simulate(Deployment(cost, scheduler=Scheduler(max_batch_tokens=2048)), traffic)
    assert not result.rejected.any() and result.mean_batch_seqs > 5  # it batches
    # and keeps up: an overloaded queue's e2e would grow with the horizon (here 680 s)
    assert result.percentile("e2e_s", 99) < 0.02 * result.makespan_s
    # error budget: the Poisson count over the horizon (4 standard errors, 1/sqrt(n)) and
    # the drain after the last arrival (at most the longest e2e) against the horizon
    tolerance = 4 / math.sqrt(n) + np.nanmax(result.e2e_s) / result.makespan_s
    assert result.mean_in_system == pytest.approx(rate * np.nanmean(result.e2e_s),
                                                  rel=tolerance)


def test_tokens_are_conserved_under_heavy_preemption() -> None:
    cost = LinearCost(kv_capacity_tokens=8_000, kv_block_tokens=16)
    traffic = Traffic(None, 2000, LengthDist.lognormal(800, 1.0), LengthDist.lognormal(300, 1.0),
                      seed=11)
    result = simulate(Deployment(cost, prefill_replicas=2,
                                 scheduler=Scheduler(max_batch_tokens=1024)), traffic)
    assert result.preemptions > 100  # the cache is far too small for the batch
    served = result.finished
    # rejected: exactly those whose prompt + output - 1 tokens exceed the 8000-token cache
    too_long = result.input_len + result.output_len - 1 > 8000
    assert too_long.any() and (result.rejected == too_long).all()
    assert result.notes[0].startswith(f"{too_long.sum()} of 2000 requests rejected")
    assert np.isfinite(result.e2e_s[served]).all()
    # every computed token is a prompt token, a decode or a recomputed token
    computed = sum(call[0] + call[2] for call in cost.calls)
    needed = int((result.input_len[served] + result.output_len[served] - 1).sum())
    assert computed == needed + result.recomputed_tokens
    assert result.mean_batch_tokens * result.iterations == pytest.approx(computed)
    assert result.output_tokens == int(result.output_len[served].sum())
    assert (result.ttft_s[served] <= result.e2e_s[served]).all()


def test_disaggregation_adds_the_kv_transfer_to_ttft() -> None:
    prefill, decode = ConstantCost(transfer_s=0.5), ConstantCost()
    result = simulate(Deployment(prefill, decode, 1, 1), fixed(1, 10, 5))
    assert result.ttft_s[0] == pytest.approx(0.01 + 0.5)
    assert result.e2e_s[0] == pytest.approx(0.51 + 4 * 0.01)
    assert result.kv_transfers == 1
    # the first token streamed by the prefill replica (Splitwise): TTFT is the prefill
    splitwise = simulate(Deployment(prefill, decode, 1, 1, ttft_at="prefill"), fixed(1, 10, 5))
    assert splitwise.ttft_s[0] == pytest.approx(0.01)
    assert splitwise.e2e_s[0] == pytest.approx(0.55)


def test_transfers_share_the_prefill_replicas_links() -> None:
    # two prompts prefilled together; their KV leaves one after the other (0.5 s each)
    prefill, decode = ConstantCost(transfer_s=0.5), ConstantCost()
    result = simulate(Deployment(prefill, decode, 1, 2), fixed(2, 10, 3))
    assert sorted(result.ttft_s) == pytest.approx([0.51, 1.01])
    assert result.e2e_s - result.ttft_s == pytest.approx([0.02, 0.02])


def test_disaggregated_tokens_are_conserved_under_pressure() -> None:
    # small caches on both sides: prefill replicas wait for their KV to leave, decode
    # replicas preempt and recompute locally
    prefill = LinearCost(kv_capacity_tokens=3000, transfer_s=0.004)
    decode = LinearCost(kv_capacity_tokens=2000)
    traffic = Traffic(200.0, 1500, LengthDist.uniform(1, 600), LengthDist.uniform(1, 200),
                      seed=5)
    result = simulate(Deployment(prefill, decode, 2, 3, Scheduler(max_batch_tokens=512)),
                      traffic)
    assert not result.rejected.any() and result.preemptions > 50
    # every prompt once, every later token once, plus what preemption threw away
    computed = sum(call[0] + call[2] for call in prefill.calls + decode.calls)
    needed = int((result.input_len + result.output_len - 1).sum())
    assert computed == needed + result.recomputed_tokens
    # prefill replicas never decode; the KV of every request that decodes moves once
    assert all(call[2] == 0 for call in prefill.calls)
    assert result.kv_transfers == int((result.output_len > 1).sum())
    moved = result.output_len > 1  # a prefill and a transfer at least, or a prefill alone
    assert (result.ttft_s[moved] >= 0.005 + 0.004 - 1e-12).all()
    assert (result.ttft_s[~moved] >= 0.005 - 1e-12).all() and (~moved).any()


@pytest.mark.parametrize("routing", ["least_outstanding", "round_robin"])
def test_replicas_share_the_load(routing: str) -> None:
    one_at_a_time = Scheduler(max_seqs=1)
    two = Deployment(ConstantCost(), prefill_replicas=2, scheduler=one_at_a_time,
                     routing=routing)
    assert list(simulate(two, fixed(2, 1, 10)).e2e_s) == pytest.approx([0.1, 0.1])
    one = Deployment(ConstantCost(), scheduler=one_at_a_time)
    assert list(simulate(one, fixed(2, 1, 10)).e2e_s) == pytest.approx([0.1, 0.2])


def test_slo_helpers() -> None:
    result = simulate(Deployment(ConstantCost(), scheduler=Scheduler(max_seqs=1)),
                      fixed(4, 1, 3))  # e2e 0.03, 0.06, 0.09, 0.12; TPOT 0.01
    assert result.percentile("e2e_s", 50) == pytest.approx(0.075)
    # TTFT 0.01, 0.04, 0.07, 0.10: two of four within 0.05 s
    assert result.slo_attainment(0.05, 0.05) == pytest.approx(0.5)
    assert result.goodput(0.05, 0.05) == pytest.approx(2 / 0.12)
    assert result.slo_attainment(0.05, 0.005) == 0.0  # every TPOT is 0.01 s
    assert result.meets_slo(0.1, 0.011, percentile=90) is True  # p90 TTFT 0.091 s
    assert result.meets_slo(0.09, 0.011, percentile=90) is False
    values, fraction = result.cdf("ttft_s")
    assert values == pytest.approx([0.01, 0.04, 0.07, 0.1]) and fraction[-1] == 1.0


def test_lognormal_lengths_keep_their_mean() -> None:
    lengths = LengthDist.lognormal(1000, 0.5).sample(np.random.default_rng(0), 200_000)
    spread = math.sqrt(math.exp(0.25) - 1) * 1000 / math.sqrt(200_000)  # its standard error
    assert lengths.mean() == pytest.approx(1000, abs=5 * spread)


def test_trace_arrivals_and_lengths(tmp_path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,input_len,output_len,user\n0.0,10,5,a\n2.0,10,2,b\n1.0,10,3,c\n")
    traffic = Traffic(None, 3, LengthDist.empirical(), LengthDist.empirical(), arrival="trace",
                      trace_path=trace)
    result = simulate(Deployment(ConstantCost()), traffic)
    assert list(result.arrival_s) == [0.0, 1.0, 2.0] and list(result.output_len) == [5, 3, 2]
    assert result.e2e_s == pytest.approx([0.05, 0.03, 0.02])
    # the trace's 1 request/s rescaled to 2 requests/s
    doubled = Traffic(2.0, 3, LengthDist.fixed(4), LengthDist.fixed(2), arrival="trace",
                      trace_path=trace)
    assert list(doubled.requests()[0]) == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("text, said", [
    ("arrival_s,input_len\n0,1\n", "lacks ['output_len']"),
    ("arrival_s,input_len,output_len\n0,1,1\n0.5,zero,1\n", "line 3, column input_len: 'zero'"),
    ("arrival_s,input_len,output_len\n-1,1,1\n", "line 2, column arrival_s: '-1'"),
    ("arrival_s,input_len,output_len\n0,1,0\n", "column output_len: '0'"),
    ("arrival_s,input_len,output_len\n", "no rows"),
])
def test_a_bad_trace_is_named(tmp_path, text: str, said: str) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(text)
    traffic = Traffic(None, 1, LengthDist.empirical(), LengthDist.fixed(3), arrival="trace",
                      trace_path=trace)
    with pytest.raises(ClusterError, match="bad.csv") as error:
        traffic.requests()
    assert said in str(error.value)


@pytest.mark.parametrize("build, said", [
    (lambda: Scheduler(max_batch_tokens=128, max_seqs=256), "max_batch_tokens=128"),
    (lambda: Scheduler(preemption="swap"), "preemption='swap'"),
    (lambda: Deployment(ConstantCost(), decode_replicas=2), "decode_replicas=2"),
    (lambda: Deployment(ConstantCost(), ConstantCost(), decode_replicas=0), "decode_replicas=0"),
    (lambda: Deployment(object()), "iteration_s"),
    (lambda: Deployment(ConstantCost(kv_block_tokens=0)), "kv_block_tokens=0"),
    (lambda: Deployment(ConstantCost(), routing="random"), "routing='random'"),
    (lambda: Traffic(0.0, 5, LengthDist.fixed(1), LengthDist.fixed(1)), "rate_per_s=0.0"),
    (lambda: Traffic(1.0, 0, LengthDist.fixed(1), LengthDist.fixed(1)), "n_requests=0"),
    (lambda: Traffic(1.0, 5, LengthDist.empirical(), LengthDist.fixed(1)), "trace_path=None"),
    (lambda: LengthDist.uniform(10, 5), "LengthDist.high=5"),
    (lambda: LengthDist.lognormal(0.5, 1.0), "LengthDist.mean=0.5"),
    (lambda: simulate(Deployment(ConstantCost(step_s=0.0)), fixed(1, 1, 1)), "= 0.0"),
    (lambda: simulate(Deployment(ConstantCost(step_s=None)), fixed(1, 1, 1)), "= None"),
    (lambda: simulate(Deployment(ConstantCost(transfer_s=-1.0), ConstantCost(), 1, 1),
                      fixed(1, 1, 2)), "kv_transfer_s(1) = -1.0"),
    (lambda: Traffic(1.0, 10**8, LengthDist.fixed(1), LengthDist.fixed(1)),
     "n_requests=100000000"),
    (lambda: simulate(Deployment(ConstantCost()), fixed(1, 1, 50), max_events=10),
     "max_events=10"),
])
def test_bad_input_is_one_clear_error(build, said: str) -> None:
    with pytest.raises(ClusterError) as error:
        build()
    assert said in str(error.value)


def reference_run(cost: ConstantCost, scheduler: Scheduler, arrival, prompt, output):
    """A second, naive implementation of the same schedule (one colocated replica): it
    visits every running request every iteration and re-sums everything, so it shares no
    bookkeeping (running sums, block heaps, epochs) with the simulator."""
    n, block = len(arrival), cost.kv_block_tokens
    free = cost.kv_capacity_tokens // block
    computed, generated, held = [0] * n, [0] * n, [0] * n
    phase, first, finish = ["new"] * n, [None] * n, [None] * n
    waiting, running, nxt, t, preempted, recomputed = [], [], 0, 0.0, 0, 0

    def preempt_newest():
        nonlocal free, preempted, recomputed
        victim = running.pop()
        free += held[victim]
        held[victim] = 0
        recomputed += computed[victim]
        computed[victim], phase[victim], preempted = 0, "waiting", preempted + 1
        waiting.insert(0, victim)
        return victim

    def blocks_for(r, tokens):
        nonlocal free
        while free < tokens and r in running:
            preempt_newest()
        if r in running:
            free -= tokens
            held[r] += tokens
        return r in running

    while nxt < n or waiting or running:
        while nxt < n and arrival[nxt] <= t:
            waiting.append(nxt)
            phase[nxt] = "waiting"
            nxt += 1
        for r in [r for r in running if phase[r] == "decode"]:
            if r in running and computed[r] + 1 > held[r] * block:
                blocks_for(r, 1)
        chunks = {}
        for r in [r for r in running if phase[r] == "prefill"]:
            budget = scheduler.max_batch_tokens - sum(
                phase[d] == "decode" for d in running) - sum(chunks.values())
            if budget <= 0:
                break
            if r in running:
                size = min(generated[r] + prompt[r] - computed[r], budget)
                if blocks_for(r, max(0, -(-(computed[r] + size) // block) - held[r])):
                    chunks[r] = size
        while waiting and len(running) < scheduler.max_seqs:
            r = waiting[0]
            budget = scheduler.max_batch_tokens - sum(
                phase[d] == "decode" for d in running) - sum(chunks.values())
            size = prompt[r] + generated[r]
            if size > budget and (budget <= 0 or not scheduler.chunked_prefill
                                  and size <= scheduler.max_batch_tokens):
                break
            size = min(size, budget)
            need = -(-size // block)
            if need > free:
                break
            waiting.pop(0)
            free, held[r], phase[r], chunks[r] = free - need, need, "prefill", size
            running.append(r)
        decodes = [r for r in running if phase[r] == "decode"]
        if not decodes and not chunks:
            t = arrival[nxt]
            continue
        pairs = sum(c * computed[r] + c * (c + 1) // 2 for r, c in chunks.items())
        t += cost.iteration_s(sum(chunks.values()), pairs, len(decodes),
                              sum(computed[r] + 1 for r in decodes))
        for r in decodes:
            computed[r] += 1
            generated[r] += 1
        for r, c in chunks.items():
            computed[r] += c
            if computed[r] == prompt[r] + generated[r]:
                generated[r] += 1
                phase[r] = "decode"
                first[r] = t if first[r] is None else first[r]
        for r in [r for r in running if generated[r] == output[r]]:
            running.remove(r)
            free += held[r]
            held[r], finish[r] = 0, t
    return first, finish, preempted, recomputed


@pytest.mark.parametrize("seed, chunked, budget", [
    (1, True, 96), (2, True, 96), (3, False, 96), (4, True, 64),
    (5, False, 64)])  # recomputes of up to 89 tokens split without chunked prefill
def test_the_simulator_matches_a_naive_reference(seed: int, chunked: bool, budget: int) -> None:
    scheduler = Scheduler(max_batch_tokens=budget, max_seqs=8, chunked_prefill=chunked)
    traffic = Traffic(80.0, 150, LengthDist.uniform(1, 60), LengthDist.uniform(1, 30),
                      seed=seed)
    ours, theirs = (LinearCost(kv_capacity_tokens=160, kv_block_tokens=4) for _ in range(2))
    result = simulate(Deployment(ours, scheduler=scheduler), traffic)
    arrival, prompt, output = traffic.requests()
    served = ~result.rejected
    assert served.all()  # at most 89 tokens of KV each: all fit the 160-token cache
    first, finish, preempted, recomputed = reference_run(
        theirs, scheduler, arrival.tolist(), prompt.tolist(), output.tolist())
    assert result.preemptions == preempted > 0
    assert result.recomputed_tokens == recomputed
    assert ours.calls == theirs.calls  # the same batches, iteration by iteration
    assert result.ttft_s == pytest.approx(np.array(first) - arrival, abs=1e-12)
    assert result.e2e_s == pytest.approx(np.array(finish) - arrival, abs=1e-12)
