"""The fused mixture-of-experts layer: routing, two grouped expert GEMMs, combine.

One call on one rank of a ``tp`` x ``ep`` expert-parallel group (TensorRT-LLM's fused MoE,
as aiconfigurator's collector times it, collector/trtllm/collect_moe.py): all ``tokens``
arrive with router logits over all ``experts``; the rank holds ``experts / ep`` experts
with ``inter / tp`` intermediate columns each and computes only the (token, expert) pairs
routed to its experts. A ``gated`` expert (SwiGLU: Mixtral, DeepSeek, Qwen) fuses gate and
up-projection to ``2 * inter / tp`` columns; a non-gated one (squared ReLU: Nemotron-H /
Nemotron 3) has an up-projection of ``inter / tp``; both project back down to ``hidden``.

``distribution`` is how the (token, expert) pairs spread over the experts:

* ``balanced``: the collector's deterministic even spread (``balanced_logits``: token t's
  i-th expert is ``(t + i * stride) mod experts`` with ``stride = ceil(experts / topk)``).
* ``power_law_<alpha>``: the collector's ``_generate_power_law_distribution``: per-expert
  loads drawn from a power law of exponent ``alpha``, rescaled to ``tokens * topk``,
  each capped at ``tokens`` (overflow handed back round-robin over the ranks), and the
  most loaded rank is the one timed. The collector times 5 forwards with 5 different
  draws in one graph and reports the mean; here the same 5 draws come from a fixed seed,
  so the op's loads are deterministic.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from math import ceil
from typing import ClassVar

import numpy as np

from chipforge.errors import OpSyntaxError
from chipforge.ops._ir import Op, OpKind, dtype_bytes

BALANCED = "balanced"
POWER_LAW = "power_law_"
# aiconfigurator collector/trtllm/collect_moe.py: one CUDA graph of 5 forwards, each with
# its own power-law draw, latency averaged over them
POWER_LAW_DRAWS = 5
# assumption: any fixed seed; the draws stand for the collector's (unseeded) ones
POWER_LAW_SEED = 20260101
ACTIVATION_DTYPE = "bf16"  # hidden states in and out stay bf16 (the collector's input)


def _alpha(distribution: str) -> float | None:
    """The power-law exponent of ``distribution``, None for balanced; errors otherwise."""
    if distribution == BALANCED:
        return None
    if distribution.startswith(POWER_LAW):
        try:
            alpha = float(distribution[len(POWER_LAW):])
        except ValueError:
            alpha = 0.0
        if alpha > 1.0:
            return alpha
    raise OpSyntaxError(f"moe: distribution={distribution!r}; expected 'balanced' or "
                        "'power_law_<alpha>' with alpha > 1 (e.g. power_law_1.2)")


@dataclass(frozen=True)
class MoE(Op):
    """A fused MoE layer on one expert-parallel rank; ``dtype`` is the experts' GEMM type
    (bf16, or fp8_e4m3 with the input quantized per tensor); activations are bf16."""

    kind: ClassVar[OpKind] = OpKind.MOE
    tokens: int = 1
    hidden: int = 1
    inter: int = 1
    topk: int = 1
    experts: int = 1
    tp: int = 1
    ep: int = 1
    distribution: str = BALANCED
    gated: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _alpha(self.distribution)
        if self.topk > self.experts:
            raise OpSyntaxError(f"moe: topk={self.topk} exceeds experts={self.experts}")
        if self.experts % self.ep:
            raise OpSyntaxError(f"moe: ep={self.ep} does not divide experts={self.experts}")
        if self.inter % self.tp:
            raise OpSyntaxError(f"moe: tp={self.tp} does not divide inter={self.inter}")

    @property
    def local_experts(self) -> int:
        return self.experts // self.ep

    @property
    def local_inter(self) -> int:
        return self.inter // self.tp

    @property
    def loads(self) -> tuple[tuple[int, ...], ...]:
        """Tokens routed to each local expert, one tuple per timed draw (balanced: one)."""
        alpha = _alpha(self.distribution)
        if alpha is None:
            return (balanced_loads(self.tokens, self.experts, self.topk, self.ep),)
        return power_law_loads(self.tokens, self.experts, self.topk, self.ep, alpha)

    @property
    def routed_pairs(self) -> float:
        """Mean (token, local expert) pairs this rank computes per draw."""
        draws = self.loads
        return sum(sum(d) for d in draws) / len(draws)

    @property
    def active_experts(self) -> float:
        """Mean local experts with at least one token (their weights must be read)."""
        draws = self.loads
        return sum(sum(1 for c in d if c) for d in draws) / len(draws)

    @property
    def up_columns(self) -> int:
        """Output columns of the up-projection: gate and up fused when gated."""
        return (2 if self.gated else 1) * self.local_inter

    @property
    def expert_weight_bytes(self) -> float:
        """One local expert's weights: up (hidden x up_columns) and down (inter/tp x hidden)."""
        return (self.up_columns + self.local_inter) * self.hidden * self.itemsize

    @property
    def flops(self) -> float:
        # per routed pair: 2 FLOPs per MAC of the up and the down projection
        return 2.0 * self.routed_pairs * self.hidden * (self.up_columns + self.local_inter)

    @property
    def bytes(self) -> float:
        """Router logits and hidden states in, output out, active experts' weights once."""
        act = dtype_bytes(ACTIVATION_DTYPE)
        logits = self.tokens * self.experts * act
        hidden = 2 * self.tokens * self.hidden * act
        return logits + hidden + self.active_experts * self.expert_weight_bytes


@functools.lru_cache(maxsize=4096)
def balanced_loads(tokens: int, experts: int, topk: int, ep: int) -> tuple[int, ...]:
    """Rank 0's per-expert loads under the collector's ``balanced_logits`` (exact)."""
    stride = ceil(experts / topk)
    local = experts // ep
    counts = [0] * local
    if tokens >= stride:
        # expert (t + i*stride) mod E: count the t in [0, tokens) of each residue
        full, extra = divmod(tokens, experts)
        for i in range(topk):
            for e in range(local):
                residue = (e - i * stride) % experts
                counts[e] += full + (residue < extra)
    else:
        for t in range(tokens):
            for i in range(topk):
                # the collector stores this float in a float32 tensor, then .long() truncates
                e = int(float(np.float32((t * stride / tokens + i * stride) % experts)))
                if e < local:
                    counts[e] += 1
    return tuple(counts)


def _sample_power_law(rng: np.random.Generator, size: int, alpha: float, xmin: float,
                      xmax: float) -> np.ndarray:
    """Inverse-CDF samples, as the collector's ``sample_power_law``."""
    u = rng.random(size)
    lo, hi = xmin ** (1 - alpha), xmax ** (1 - alpha)
    return ((hi - lo) * u + lo) ** (1 / (1 - alpha))


def _fill_up(values: np.ndarray, amount: int, bound: int) -> None:
    """Add ``amount`` one at a time to the smallest value below ``bound`` (first on ties),
    in closed form: raise the lowest values to a level, the rest to the first at it."""
    low, high = int(values.min()), bound
    while low < high:  # the highest level whose fill fits in amount
        mid = (low + high + 1) // 2
        if int(np.clip(mid - values, 0, None).sum()) <= amount:
            low = mid
        else:
            high = mid - 1
    amount -= int(np.clip(low - values, 0, None).sum())
    np.maximum(values, low, out=values)
    at_level = np.flatnonzero(values == low)[:amount]
    values[at_level] += 1


def _round_robin_add(loads: np.ndarray, amount: int, bound: int) -> None:
    """The collector's ``_round_robin_adjust_per_rank`` (step +1): one unit per rank per
    pass to that rank's least loaded expert below ``bound``, until ``amount`` is placed."""
    room = (bound - loads).sum(axis=1)
    low, high = 0, int(room.max())
    while low < high:  # full passes: every rank takes min(room, passes)
        mid = (low + high + 1) // 2
        if int(np.minimum(room, mid).sum()) <= amount:
            low = mid
        else:
            high = mid - 1
    share = np.minimum(room, low)
    rest = amount - int(share.sum())
    for r in np.flatnonzero(room > low)[:rest]:
        share[r] += 1
    for r, add in enumerate(share):
        if add:
            _fill_up(loads[r], int(add), bound)


def _round_robin_remove(loads: np.ndarray, amount: int) -> None:
    """Step -1: one unit per rank per pass from that rank's most loaded expert."""
    while amount > 0:
        for row in loads:
            if amount == 0:
                break
            if row.max() > 0:
                row[int(row.argmax())] -= 1
                amount -= 1


def _power_law_draw(rng: np.random.Generator, tokens: int, experts: int, topk: int,
                    ep: int, alpha: float) -> tuple[int, ...]:
    """One draw of the collector's ``_generate_power_law_distribution``: the loads of the
    most loaded rank's experts."""
    if tokens * topk > experts:
        raw = _sample_power_law(rng, experts, alpha, 1.0, tokens * 0.8)
    else:
        raw = _sample_power_law(rng, experts, alpha, 0.01, 2.0)
    target = tokens * topk
    counts = np.rint(raw / raw.sum() * target).astype(np.int64)
    overflow = int(np.clip(counts - tokens, 0, None).sum())
    loads = np.minimum(counts, tokens).reshape(ep, experts // ep)
    if overflow:
        _round_robin_add(loads, overflow, tokens)
    delta = target - int(loads.sum())
    if delta > 0:
        _round_robin_add(loads, delta, tokens)
    elif delta < 0:
        _round_robin_remove(loads, -delta)
    return tuple(int(c) for c in loads[int(loads.sum(axis=1).argmax())])


@functools.lru_cache(maxsize=4096)
def power_law_loads(tokens: int, experts: int, topk: int, ep: int,
                    alpha: float) -> tuple[tuple[int, ...], ...]:
    """The straggler rank's per-expert loads for each of the collector's draws."""
    rng = np.random.default_rng(POWER_LAW_SEED)
    return tuple(_power_law_draw(rng, tokens, experts, topk, ep, alpha)
                 for _ in range(POWER_LAW_DRAWS))


def moe(tokens: int, hidden: int, inter: int, topk: int, experts: int, tp: int = 1,
        ep: int = 1, distribution: str = BALANCED, gated: bool = True, dtype: str = "bf16",
        name: str = "") -> MoE:
    return MoE(tokens=tokens, hidden=hidden, inter=inter, topk=topk, experts=experts, tp=tp,
               ep=ep, distribution=distribution, gated=gated, dtype=dtype, name=name)
