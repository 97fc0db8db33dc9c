"""Requests a deployment can never serve, found before the run and reported in its notes.

A request holds at most prompt + output - 1 tokens of KV (the last sampled token is never fed
back), also after a recompute preemption; if a replica's whole cache cannot hold them, it
would preempt itself forever. Without chunked prefill a prompt must fit one iteration's
token budget. (A recompute after preemption, prompt + generated tokens, may exceed it: the
engine then runs that one in chunks, a case vLLM forbids by requiring
max_num_batched_tokens >= max_model_len without chunked prefill.)
"""

from __future__ import annotations

import numpy as np

from chipforge.cluster._serve_types import Deployment, StepCost

__all__: list[str] = []


def rejections(deployment: Deployment, inputs: np.ndarray,
               outputs: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """(bool mask of rejected requests, one note per reason)."""
    most_kv = inputs + outputs - 1
    budget = deployment.scheduler.max_batch_tokens
    chunked = deployment.scheduler.chunked_prefill
    checks: list[tuple[np.ndarray, str]] = []
    if deployment.decode is None:
        checks.append(_capacity(deployment.prefill, most_kv, "prompt + output - 1", "replica"))
    else:
        checks.append(_capacity(deployment.prefill, inputs, "prompt", "prefill replica"))
        checks.append(_capacity(deployment.decode, most_kv, "prompt + output - 1",
                                "decode replica"))
    if not chunked:
        checks.append((inputs > budget, f"a prompt longer than max_batch_tokens = {budget} "
                       "cannot run in one iteration without chunked prefill"))
    rejected = np.zeros(len(inputs), dtype=bool)
    notes = []
    for mask, reason in checks:
        fresh = mask & ~rejected
        if fresh.any():
            notes.append(f"{int(fresh.sum())} of {len(inputs)} requests rejected: {reason}")
        rejected |= mask
    return rejected, tuple(notes)


def _capacity(cost: StepCost, tokens: np.ndarray, what: str,
              where: str) -> tuple[np.ndarray, str]:
    usable = cost.kv_capacity_tokens // cost.kv_block_tokens * cost.kv_block_tokens
    return tokens > usable, (f"{what} tokens above the {where}'s KV capacity of {usable} "
                             f"tokens ({cost.kv_block_tokens}-token blocks)")
