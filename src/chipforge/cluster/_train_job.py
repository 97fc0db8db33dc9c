"""The inputs and result of one LLM training-step estimate (docs/cluster.md, "LLM training plans").

Rank order is Megatron-LM's (Narayanan et al. 2021, arXiv 2104.04473 §3): tensor parallel
innermost, then context parallel, then data parallel, pipeline outermost. Expert parallelism
folds into the data-parallel x context-parallel ranks as Megatron-Core does it: the ``ep``
ranks holding one layer's experts are a sub-group of the ``dp * cp`` ranks of a stage, so
``ep`` must divide ``dp * cp`` and adds no chips (chips = tp * pp * dp * cp).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from chipforge.errors import ClusterError
from chipforge.workloads import LLMConfig

SCHEDULES = ("1f1b", "interleaved")
RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class TrainJob:
    """What to train: a model, a token count, and the global batch in sequences."""

    model: LLMConfig
    tokens: float
    seq_len: int
    global_batch_seqs: int
    dtype: str = "bf16"

    def __post_init__(self) -> None:
        if not isinstance(self.model, LLMConfig):
            raise ClusterError(f"TrainJob: model={self.model!r}; expected an LLMConfig")
        _positive("TrainJob", "tokens", self.tokens, number=True)
        _positive("TrainJob", "seq_len", self.seq_len)
        _positive("TrainJob", "global_batch_seqs", self.global_batch_seqs)
        if not math.isfinite(self.tokens):
            raise ClusterError(f"TrainJob: tokens={self.tokens!r}; expected a finite number")
        if self.model.position_embeddings and self.seq_len > self.model.max_position_embeddings:
            raise ClusterError(f"TrainJob: seq_len={self.seq_len} exceeds the "
                               f"{self.model.max_position_embeddings} learned positions of "
                               f"{self.model.name or 'the model'}; expected at most that")
        if self.dtype not in ("bf16", "fp16"):
            raise ClusterError(f"TrainJob: dtype={self.dtype!r}; expected 'bf16' or 'fp16' "
                               "(mixed-precision training as Megatron-LM runs it)")

    @property
    def global_batch_tokens(self) -> int:
        return self.global_batch_seqs * self.seq_len

    @property
    def steps(self) -> float:
        """Optimizer steps to see ``tokens`` tokens."""
        return self.tokens / self.global_batch_tokens


@dataclass(frozen=True)
class Parallelism:
    """One training plan: the parallel degrees, the schedule and the memory savers."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1
    micro_batch: int = 1
    schedule: str = "1f1b"
    virtual_stages: int = 1  # model chunks per pipeline stage (interleaved schedule)
    zero: int = 1  # 0: none; 1: optimizer states; 2: + grads; 3: + params (FSDP)
    recompute: str = "none"
    sequence_parallel: bool = False
    overlap_grad_reduce: bool = True

    def __post_init__(self) -> None:
        for key in ("tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages"):
            _positive("Parallelism", key, getattr(self, key))
        if self.schedule not in SCHEDULES:
            raise ClusterError(f"Parallelism: schedule={self.schedule!r}; expected one of "
                               f"{', '.join(SCHEDULES)}")
        if self.schedule == "1f1b" and self.virtual_stages != 1:
            raise ClusterError(f"Parallelism: virtual_stages={self.virtual_stages} with "
                               "schedule='1f1b'; expected 1 (or schedule='interleaved')")
        if self.zero not in (0, 1, 2, 3) or isinstance(self.zero, bool):
            raise ClusterError(f"Parallelism: zero={self.zero!r}; expected 0, 1, 2 or 3")
        if self.recompute not in RECOMPUTE:
            raise ClusterError(f"Parallelism: recompute={self.recompute!r}; expected one of "
                               f"{', '.join(RECOMPUTE)}")
        if (self.dp * self.cp) % self.ep:
            raise ClusterError(f"Parallelism: ep={self.ep} does not divide dp*cp="
                               f"{self.dp * self.cp}; expected expert-parallel ranks drawn "
                               "from the data- and context-parallel ranks")

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    def describe(self) -> str:
        parts = [f"tp{self.tp}", f"pp{self.pp}", f"dp{self.dp}"]
        parts += [f"cp{self.cp}"] * (self.cp > 1) + [f"ep{self.ep}"] * (self.ep > 1)
        parts.append(f"mb{self.micro_batch}")
        if self.schedule == "interleaved":
            parts.append(f"v{self.virtual_stages}")
        parts.append(f"zero{self.zero}")
        parts += [f"rc-{self.recompute}"] * (self.recompute != "none")
        parts += ["sp"] * self.sequence_parallel
        return " ".join(parts)


@dataclass(frozen=True)
class StepEstimate:
    """One training step of a plan: time, exposed time by cause, FLOPs, MFU and memory.

    ``breakdown`` holds the seconds of the step each cause adds on the critical path
    (they sum to ``step_time_s``); ``memory`` the bytes per chip of the most loaded
    pipeline stage by part (they sum to ``memory_bytes``).
    """

    plan: Parallelism
    step_time_s: float
    compute_s: float
    breakdown: dict[str, float]
    model_flops: float  # per step, whole cluster (6N per token + attention, no recompute)
    hardware_flops: float  # per step, whole cluster, recompute included
    mfu: float
    hfu: float
    memory: dict[str, float]
    memory_bytes: float
    memory_capacity_bytes: float  # usable bytes per chip
    fits: bool
    chips: int
    note: str = ""
    extras: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.extras.get("global_batch_tokens", 0.0) / self.step_time_s

    @property
    def model_flops_per_chip_s(self) -> float:
        return self.model_flops / (self.chips * self.step_time_s)

    @property
    def hardware_flops_per_chip_s(self) -> float:
        return self.hardware_flops / (self.chips * self.step_time_s)


def _positive(where: str, key: str, value: object, number: bool = False) -> None:
    ok_type = (int, float) if number else (int,)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not value > 0:
        kind = "a positive number" if number else "a positive int"
        raise ClusterError(f"{where}: {key}={value!r}; expected {kind}")


__all__ = ["Parallelism", "StepEstimate", "TrainJob"]
