"""The serving simulator's event loop (the semantics are in _serve_sim's docstrings).

Cost stays linear in the number of requests: events are engine iterations and KV transfers
on one heap, arrivals are read from their sorted array, and an iteration's work is
proportional to what changes in it, not to the batch. Decodes are never visited one by one:
each replica keeps the count of its decodes and the sum of their contexts (``base_sum + D*j``
at iteration j), and a per-replica heap says at which iteration a decode needs its next KV
block or emits its last token. Per-request state lives in plain lists (faster than numpy
for scalar updates); preempted requests' heap entries are dropped lazily by an epoch number.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from operator import attrgetter

from chipforge.cluster._serve_types import Deployment, StepCost
from chipforge.errors import ClusterError

__all__: list[str] = []

_ITERATION_END, _TRANSFER_END = 0, 1
_outstanding = attrgetter("outstanding")


class _Replica:
    __slots__ = ("index", "role", "cost", "block", "free_blocks", "waiting", "running",
                 "prefilling", "decoding", "base_sum", "it", "busy", "block_heap",
                 "finish_heap", "outstanding", "pending", "in_transfer", "link_free_s")

    def __init__(self, index: int, role: str, cost: StepCost) -> None:
        self.index = index
        self.role = role  # "both" (colocated), "prefill" or "decode"
        self.cost = cost
        self.block = cost.kv_block_tokens
        self.free_blocks = cost.kv_capacity_tokens // cost.kv_block_tokens
        self.waiting: deque[int] = deque()  # FCFS; preempted requests go to the front
        self.running: dict[int, None] = {}  # holding blocks, in admission order
        self.prefilling: dict[int, None] = {}  # the running ones still in prefill
        self.decoding = 0
        self.base_sum = 0  # sum over decodes of (context at iteration j) - j
        self.it = 0  # the last iteration scheduled
        self.busy = False
        self.block_heap: list[tuple[int, int, int, int]] = []  # (iteration, admission, r, epoch)
        self.finish_heap: list[tuple[int, int, int]] = []  # (iteration, r, epoch)
        self.outstanding = 0  # routed here and not done (routing's load measure)
        self.pending: deque[int] = deque()  # decode role: handed over, awaiting blocks
        self.in_transfer = 0
        self.link_free_s = 0.0  # prefill role: when its links have sent the queued KV


class Engine:
    """One run's state; ``run`` processes it, and the lists hold each request's times."""

    def __init__(self, deployment: Deployment, prompt: list[int], output: list[int]) -> None:
        sched = deployment.scheduler
        self.max_tokens = sched.max_batch_tokens
        self.max_seqs = sched.max_seqs
        self.chunked = sched.chunked_prefill
        self.round_robin = deployment.routing == "round_robin"
        self.ttft_at_prefill = deployment.ttft_at == "prefill"
        front_role = "prefill" if deployment.disaggregated else "both"
        self.front = [_Replica(i, front_role, deployment.prefill)
                      for i in range(deployment.prefill_replicas)]
        self.back = [_Replica(i, "decode", deployment.decode)
                     for i in range(deployment.decode_replicas)] if deployment.decode else []
        self.rr_front = self.rr_back = 0
        n = len(prompt)
        self.prompt, self.out = prompt, output
        self.computed, self.generated = [0] * n, [0] * n
        self.ntok = list(prompt)  # prompt + generated: what a prefill must have computed
        self.held, self.held_front = [0] * n, [0] * n
        self.epoch, self.adm = [0] * n, [0] * n
        self.dec_it, self.dec_c, self.fin_it = [0] * n, [0] * n, [0] * n
        self.front_of = [0] * n
        self.first_s, self.finish_s = [-1.0] * n, [-1.0] * n
        self.admissions = 0
        self.events: list[tuple] = []
        self.seq = 0
        self.dirty: dict[_Replica, None] = {}
        self.preemptions = self.recomputed = self.transfers = 0
        self.iterations = self.batch_seqs = self.batch_tokens = 0
        self.in_system = 0

    # --- the loop -------------------------------------------------------------------------
    def run(self, arrival: list[float], rejected: list[bool], max_events: int | None) -> float:
        """Process every event; return the time-average number of requests in the system."""
        events, n, i = self.events, len(arrival), 0
        handled, limit = 0, max_events if max_events is not None else math.inf
        area, t_last, t0 = 0.0, arrival[0], arrival[0]
        while True:
            t = arrival[i] if i < n else math.inf
            if events and events[0][0] <= t:
                t = events[0][0]
            if t == math.inf:
                break
            area += self.in_system * (t - t_last)
            t_last = t
            while events and events[0][0] == t:
                _, _, kind, a, b = heapq.heappop(events)
                handled += 1
                if handled > limit:
                    raise ClusterError(f"max_events={max_events!r}: the run needs more events "
                                       f"(stopped at t = {t:.6g} s); expected a larger bound")
                if kind == _ITERATION_END:
                    self._iteration_end(a, b, t)
                else:
                    self._transfer_end(a, b, t)
            while i < n and arrival[i] <= t:
                if not rejected[i]:
                    self._arrive(i)
                i += 1
            for rep in self.dirty:
                if not rep.busy:
                    self._start(rep, t)
            self.dirty.clear()
        return area / (t_last - t0) if t_last > t0 else 0.0

    def _push(self, t: float, kind: int, a: object, b: object) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, a, b))

    def _route(self, pool: list[_Replica], back: bool) -> _Replica:
        if not self.round_robin:
            return min(pool, key=_outstanding)
        if back:
            self.rr_back += 1
            return pool[(self.rr_back - 1) % len(pool)]
        self.rr_front += 1
        return pool[(self.rr_front - 1) % len(pool)]

    def _arrive(self, r: int) -> None:
        rep = self._route(self.front, False)
        rep.outstanding += 1
        rep.waiting.append(r)
        self.in_system += 1
        self.dirty[rep] = None

    # --- scheduling one iteration (vLLM V1 / Sarathi-Serve) ------------------------------
    def _start(self, rep: _Replica, now: float) -> None:
        j = rep.it + 1
        self._grow_decodes(rep, j)
        chunks: list[tuple[int, int]] = []
        tokens, pairs = self._continue_prefills(rep, j, chunks)
        tokens, pairs = self._admit_waiting(rep, chunks, tokens, pairs)
        decodes = rep.decoding
        if decodes == 0 and not chunks:
            rep.busy = False
            return
        context = rep.base_sum + decodes * j
        answer = rep.cost.iteration_s(tokens, pairs, decodes, context)
        seconds = _seconds(answer)
        if not 0 < seconds < math.inf:
            raise ClusterError(
                f"StepCost.iteration_s({tokens}, {pairs}, {decodes}, {context}) = {answer!r}: "
                "expected a finite time > 0 s")
        rep.it, rep.busy = j, True
        self.iterations += 1
        self.batch_seqs += decodes + len(chunks)
        self.batch_tokens += decodes + tokens
        self._push(now + seconds, _ITERATION_END, rep, chunks)

    def _grow_decodes(self, rep: _Replica, j: int) -> None:
        """Decodes whose next token starts a new KV block get it, or preemption makes room."""
        heap, epoch, held, fin_it, block = (rep.block_heap, self.epoch, self.held, self.fin_it,
                                            rep.block)
        while heap and heap[0][0] <= j:
            _, adm, r, ep = heap[0]
            if ep == epoch[r]:
                if rep.free_blocks:  # the common case, inline: one block is free
                    rep.free_blocks -= 1
                    held[r] += 1
                elif not self._reserve(rep, r, 1, j):
                    heapq.heappop(heap)
                    continue
                if j + block <= fin_it[r]:  # its next block, B tokens later
                    heapq.heapreplace(heap, (j + block, adm, r, ep))
                    continue
            heapq.heappop(heap)

    def _continue_prefills(self, rep: _Replica, j: int,
                           chunks: list[tuple[int, int]]) -> tuple[int, int]:
        """Running requests part-way through their prefill take the next chunk, FCFS."""
        tokens = pairs = 0
        for r in list(rep.prefilling):
            budget = self.max_tokens - rep.decoding - tokens
            if budget <= 0:
                break
            if r not in rep.prefilling:  # preempted to make room for an older one
                continue
            done = self.computed[r]
            chunk = min(self.ntok[r] - done, budget)
            need = -(-(done + chunk) // rep.block) - self.held[r]
            if need > 0 and not self._reserve(rep, r, need, j):
                continue
            chunks.append((r, chunk))
            tokens += chunk
            pairs += chunk * done + chunk * (chunk + 1) // 2
        return tokens, pairs

    def _admit_waiting(self, rep: _Replica, chunks: list[tuple[int, int]], tokens: int,
                       pairs: int) -> tuple[int, int]:
        """Waiting requests join FCFS while the budget, max_seqs and free blocks allow (vLLM
        V1 stops at the first that does not fit; it never preempts for a new request)."""
        waiting, computed = rep.waiting, self.computed
        while waiting and len(rep.running) + rep.in_transfer < self.max_seqs:
            budget = self.max_tokens - rep.decoding - tokens
            r = waiting[0]
            done = computed[r]
            chunk = self.ntok[r] - done
            if chunk > budget:
                # whole prefills only without chunked prefill, but for a recompute that
                # exceeds the whole budget (see _serve_reject)
                if budget <= 0 or (not self.chunked and chunk <= self.max_tokens):
                    break
                chunk = budget
            need = -(-(done + chunk) // rep.block) - self.held[r]
            if need > rep.free_blocks:
                break
            waiting.popleft()
            rep.free_blocks -= need
            self.held[r] += need
            self.admissions += 1
            self.adm[r] = self.admissions
            rep.running[r] = None
            rep.prefilling[r] = None
            chunks.append((r, chunk))
            tokens += chunk
            pairs += chunk * done + chunk * (chunk + 1) // 2
        return tokens, pairs

    def _reserve(self, rep: _Replica, r: int, need: int, j: int) -> bool:
        """``need`` more blocks for running request r, preempting the newest running request
        until they are free; False if r itself was preempted."""
        while rep.free_blocks < need:
            victim = next(reversed(rep.running))
            self._preempt(rep, victim, j)
            if victim == r:
                return False
        rep.free_blocks -= need
        self.held[r] += need
        return True

    def _preempt(self, rep: _Replica, r: int, j: int) -> None:
        """Recompute preemption before iteration j: r's KV is freed and it waits, first in
        line, to prefill its prompt and the tokens it has generated again."""
        if r in rep.prefilling:
            del rep.prefilling[r]
            cached = self.computed[r]
        else:
            elapsed = j - 1 - self.dec_it[r]
            cached = self.dec_c[r] + elapsed
            self.generated[r] = self.out[r] - (self.fin_it[r] - j + 1)
            self.ntok[r] = self.prompt[r] + self.generated[r]
            rep.decoding -= 1
            rep.base_sum -= self.dec_c[r] - self.dec_it[r]
        del rep.running[r]
        rep.free_blocks += self.held[r]
        self.held[r] = 0
        self.computed[r] = 0
        self.epoch[r] += 1
        self.preemptions += 1
        self.recomputed += cached
        rep.waiting.appendleft(r)

    # --- the end of an iteration ---------------------------------------------------------
    def _iteration_end(self, rep: _Replica, chunks: list[tuple[int, int]], t: float) -> None:
        j = rep.it
        for r, chunk in chunks:
            self.computed[r] += chunk
            if self.computed[r] < self.ntok[r]:
                continue
            del rep.prefilling[r]  # the prefill is complete: it samples a token
            self.generated[r] += 1
            self.ntok[r] += 1
            if self.first_s[r] < 0 and (rep.role != "prefill" or self.ttft_at_prefill
                                        or self.generated[r] == self.out[r]):
                self.first_s[r] = t
            if self.generated[r] == self.out[r]:
                self._finish(rep, r, t)
            elif rep.role == "prefill":
                self._hand_over(rep, r, t)
            else:
                self._enter_decode(rep, r, j)
        heap, epoch = rep.finish_heap, self.epoch
        while heap and heap[0][0] <= j:
            _, r, ep = heapq.heappop(heap)
            if ep == epoch[r]:
                rep.decoding -= 1
                rep.base_sum -= self.dec_c[r] - self.dec_it[r]
                self.generated[r] = self.out[r]
                self._finish(rep, r, t)
        rep.busy = False
        self.dirty[rep] = None
        if rep.role == "decode":
            self._start_transfers(rep, t)

    def _enter_decode(self, rep: _Replica, r: int, j: int) -> None:
        """r decodes from iteration j + 1 on, one token per iteration."""
        cached = self.computed[r]
        self.dec_it[r], self.dec_c[r] = j, cached
        rep.decoding += 1
        rep.base_sum += cached - j  # its context at iteration j + 1 is cached + 1
        last = j + self.out[r] - self.generated[r]
        self.fin_it[r] = last
        heapq.heappush(rep.finish_heap, (last, r, self.epoch[r]))
        grow = j + 1 + self.held[r] * rep.block - cached  # its first token past its blocks
        if grow <= last:
            heapq.heappush(rep.block_heap, (grow, self.adm[r], r, self.epoch[r]))

    def _finish(self, rep: _Replica, r: int, t: float) -> None:
        del rep.running[r]
        rep.free_blocks += self.held[r]
        self.held[r] = 0
        self.finish_s[r] = t
        rep.outstanding -= 1
        self.in_system -= 1

    # --- disaggregation (DistServe / Splitwise) ------------------------------------------
    def _hand_over(self, front: _Replica, r: int, t: float) -> None:
        """A prefill replica's finished prompt: its blocks stay until its KV has been sent."""
        del front.running[r]
        front.outstanding -= 1
        self.held_front[r], self.held[r] = self.held[r], 0
        self.front_of[r] = front.index
        back = self._route(self.back, True)
        back.outstanding += 1
        back.pending.append(r)
        self._start_transfers(back, t)

    def _start_transfers(self, back: _Replica, t: float) -> None:
        """The decode replica allocates blocks for handed-over requests FCFS, then each KV
        moves over its prefill replica's links, one transfer after another."""
        while back.pending and len(back.running) + back.in_transfer < self.max_seqs:
            r = back.pending[0]
            need = -(-self.computed[r] // back.block)
            if need > back.free_blocks:
                break
            back.pending.popleft()
            back.free_blocks -= need
            self.held[r] = need
            back.in_transfer += 1
            front = self.front[self.front_of[r]]
            answer = front.cost.kv_transfer_s(self.computed[r])
            seconds = _seconds(answer)
            if not 0 <= seconds < math.inf:
                raise ClusterError(f"StepCost.kv_transfer_s({self.computed[r]}) = {answer!r}:"
                                   " expected a finite time >= 0 s")
            front.link_free_s = max(t, front.link_free_s) + seconds
            self.transfers += 1
            self._push(front.link_free_s, _TRANSFER_END, r, back)

    def _transfer_end(self, r: int, back: _Replica, t: float) -> None:
        front = self.front[self.front_of[r]]
        front.free_blocks += self.held_front[r]
        self.held_front[r] = 0
        self.dirty[front] = None
        back.in_transfer -= 1
        if self.first_s[r] < 0:
            self.first_s[r] = t
        self.admissions += 1
        self.adm[r] = self.admissions
        back.running[r] = None
        self._enter_decode(back, r, back.it)
        self.dirty[back] = None


def _seconds(value: object) -> float:
    """A StepCost's answer as a float; NaN (refused by the caller's check) if it is none."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
