"""Failures, checkpoints and restarts: the fraction of a training run's wall time that is
useful work (docs/cluster.md, "Plan search, goodput and cost").

A synchronous data-parallel job stops whenever any of its chips (or their host, NIC or
switch) fails, and restarts from its last checkpoint. The failure rate comes from the one
public count at frontier scale, the Llama 3 paper (Dubey et al. 2024, arXiv 2407.21783,
Sec. 3.3.4), split into a part that scales with DRAM capacity (the HBM failures) and a part
per chip; the checkpoint interval is Daly's optimum; goodput is Daly's expected useful
fraction under exponential failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chipforge.arch import ChipSpec
from chipforge.errors import ClusterError

# source: Dubey et al. 2024 (The Llama 3 Herd of Models, arXiv 2407.21783) Sec. 3.3.4 and
# Table 5: a 54-day snapshot of Llama 3 405B pre-training on 16,384 H100 80GB GPUs had 466
# job interruptions, 47 planned (automated maintenance) and 419 unexpected; 72 of the
# unexpected ones (17.2%) were HBM3 memory failures.
LLAMA3_GPUS = 16_384
LLAMA3_DAYS = 54.0
LLAMA3_UNEXPECTED = 419
LLAMA3_HBM = 72
LLAMA3_PLANNED = 47
# source: NVIDIA H100 datasheet: 80 GB HBM3 on the H100 SXM the Llama 3 cluster used
LLAMA3_HBM_BYTES_PER_GPU = 80e9
# source: Dubey et al. 2024 Sec. 3.3.1: the Tectonic storage behind the 16K-GPU cluster
# "supports a sustainable throughput of 2 TB/s"; assumption: storage is bought in
# proportion to the cluster, so each chip's share (2 TB/s / 16,384 = 122 MB/s) is the same
# at every scale.
STORAGE_BYTES_PER_S_PER_CHIP = 2e12 / LLAMA3_GPUS
# assumption: a restart (detect the failure, drain and replace the node from a hot spare,
# relaunch the processes and build the NCCL communicators) takes 10 minutes before the
# checkpoint is read back; Llama 3 reports that automation handled all but three of 466
# interruptions, so no manual repair time is on the critical path.
RELAUNCH_S = 600.0
# assumption: a checkpoint holds what mixed-precision Adam needs to resume exactly: bf16
# weights (2 bytes/param), fp32 master weights and two fp32 Adam moments (12 bytes/param),
# as Megatron-LM's distributed checkpoint stores them.
CHECKPOINT_BYTES_PER_PARAM = 14.0

_SNAPSHOT_CHIP_S = LLAMA3_GPUS * LLAMA3_DAYS * 86_400.0


@dataclass(frozen=True)
class FailureModel:
    """Interruption rates and restart costs; the same parameter kinds for every chip."""

    # unexpected interruptions per chip-second not due to DRAM (chip, host, NIC, switch)
    chip_failures_per_s: float = (LLAMA3_UNEXPECTED - LLAMA3_HBM) / _SNAPSHOT_CHIP_S
    # DRAM failures per byte-second of device memory (assumption: DRAM faults scale with
    # the DRAM devices, hence capacity, as in the field study of Sridharan & Liberty, SC 2012)
    memory_failures_per_byte_s: float = LLAMA3_HBM / (_SNAPSHOT_CHIP_S * LLAMA3_HBM_BYTES_PER_GPU)
    # planned stops per chip-second (maintenance; assumption: a checkpoint is taken first,
    # so a planned stop loses only the restart)
    planned_stops_per_s: float = LLAMA3_PLANNED / _SNAPSHOT_CHIP_S
    relaunch_s: float = RELAUNCH_S
    storage_bytes_per_s_per_chip: float = STORAGE_BYTES_PER_S_PER_CHIP

    def __post_init__(self) -> None:
        for name in ("chip_failures_per_s", "memory_failures_per_byte_s",
                     "planned_stops_per_s", "relaunch_s"):
            value = getattr(self, name)
            if not _finite(value) or value < 0:
                raise ClusterError(f"FailureModel: {name}={value!r}; expected a "
                                   "non-negative number")
        if not _finite(self.storage_bytes_per_s_per_chip) \
                or self.storage_bytes_per_s_per_chip <= 0:
            raise ClusterError("FailureModel: storage_bytes_per_s_per_chip="
                               f"{self.storage_bytes_per_s_per_chip!r}; expected a positive "
                               "number of bytes per second")

    def failures_per_s(self, chip: ChipSpec) -> float:
        """Unexpected interruptions per second that one chip (with its host share) causes."""
        return self.chip_failures_per_s + \
            self.memory_failures_per_byte_s * chip.memory.capacity_bytes


@dataclass(frozen=True)
class Goodput:
    """Useful fraction of a run's wall time, with the quantities behind it."""

    chips: int
    mtbf_s: float  # mean time between unexpected interruptions of the whole job
    planned_interval_s: float  # mean time between planned stops (inf: none)
    checkpoint_bytes: float
    checkpoint_write_s: float
    restart_s: float  # relaunch plus reading the checkpoint back
    checkpoint_interval_s: float  # compute time between checkpoints (Daly's optimum)
    fraction: float  # useful time / wall time, in (0, 1]


def daly_interval_s(write_s: float, mtbf_s: float) -> float:
    """Daly's optimum compute time between checkpoints (Daly 2006, FGCS 22:303):
    sqrt(2 d M) [1 + sqrt(d / 2M) / 3 + (d / 2M) / 9] - d for d < 2M, else M; to first
    order Young's sqrt(2 d M) (Young 1974)."""
    if write_s >= 2.0 * mtbf_s:
        return mtbf_s
    x = write_s / (2.0 * mtbf_s)
    return math.sqrt(2.0 * write_s * mtbf_s) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - write_s


def useful_fraction(interval_s: float, write_s: float, restart_s: float,
                    mtbf_s: float) -> float:
    """Daly's expected wall time per unit of work under exponential failures (Daly 2006:
    T_w = M e^(R/M) (e^((tau + d)/M) - 1) T_s / tau), inverted: tau / (M e^(R/M)
    (e^((tau + d)/M) - 1)). To first order 1 - d/tau - (tau/2 + R)/M."""
    if math.isinf(mtbf_s):
        return interval_s / (interval_s + write_s)
    return interval_s / (mtbf_s * math.exp(restart_s / mtbf_s)
                         * math.expm1((interval_s + write_s) / mtbf_s))


def goodput(chip: ChipSpec, chips: int, checkpoint_bytes: float,
            failures: FailureModel | None = None) -> Goodput:
    """The useful fraction of wall time for a job on ``chips`` chips that checkpoints
    ``checkpoint_bytes`` at Daly's interval and restarts after each failure."""
    f = failures or FailureModel()
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise ClusterError(f"goodput: chips={chips!r}; expected a positive int")
    if not _finite(checkpoint_bytes) or checkpoint_bytes <= 0:
        raise ClusterError(f"goodput: checkpoint_bytes={checkpoint_bytes!r}; expected a "
                           "positive number of bytes")
    write_s = checkpoint_bytes / (f.storage_bytes_per_s_per_chip * chips)
    restart_s = f.relaunch_s + write_s  # the checkpoint is read back at the write bandwidth
    rate = chips * f.failures_per_s(chip)
    mtbf_s = 1.0 / rate if rate > 0 else math.inf
    interval_s = daly_interval_s(write_s, mtbf_s) if rate > 0 else math.inf
    planned_rate = chips * f.planned_stops_per_s
    if math.isinf(interval_s):
        fraction = 1.0
    else:
        fraction = useful_fraction(interval_s, write_s, restart_s, mtbf_s)
    # a planned stop every 1/planned_rate wall seconds costs one restart each
    fraction *= max(0.0, 1.0 - planned_rate * restart_s)
    return Goodput(chips, mtbf_s, 1.0 / planned_rate if planned_rate > 0 else math.inf,
                   checkpoint_bytes, write_s, restart_s, interval_s, fraction)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


__all__ = ["FailureModel", "Goodput", "daly_interval_s", "goodput", "useful_fraction"]
