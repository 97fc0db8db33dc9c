"""A DLRM-style model's shape and its per-chip costs: the data-parallel dense part (bottom
MLP, interaction, top MLP) timed by the single-chip engine, and the embedding shards' HBM
traffic (lookups forward, gradient scatter and optimizer update backward)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from chipforge import ops
from chipforge.arch import ChipSpec
from chipforge.errors import ChipforgeError, ClusterError
from chipforge.perf import estimate

# source: TorchRec planner constants (BIGINT_DTYPE = 8): KeyedJaggedTensor ids are int64
INDEX_BYTES = 8
FP32_BYTES = 4
OPTIMIZERS = ("sgd", "adagrad", "rowwise_adagrad")
INTERACTIONS = ("dot", "dcnv2")

# source: MLPerf Training v3.0 DLRM-DCNv2 (mlcommons/training_results_v3.0,
# NVIDIA/benchmarks/dlrm_dcnv2/implementations/hugectr: train.py TABLE_SIZE_ARRAY and
# MULTI_HOT_SIZES; README step 1.5 --num_embeddings_per_feature / --multi_hot_sizes):
# Criteo 1TB hashed to at most 40M rows per feature, synthetic multi-hot lookups per sample.
MLPERF_DCNV2_ROWS = (40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000,
                     3067956, 405282, 10, 2209, 11938, 155, 4, 976, 14, 40000000, 40000000,
                     40000000, 590152, 12973, 108, 36)
MLPERF_DCNV2_HOTNESS = (3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27,
                        10, 3, 1, 1)


@dataclass(frozen=True)
class DLRMSpec:
    """A DLRM: ``table_rows[t]`` rows of ``embedding_dim`` per sparse feature, ``pooling[t]``
    mean lookups per sample (summed into one vector), a bottom MLP over ``dense_features``,
    an interaction (``"dot"``: DLRM pairwise dots; ``"dcnv2"``: low-rank DCNv2 cross layers,
    Wang et al. 2021, arXiv:2008.13535) and a top MLP ending in one logit.

    ``dtype`` is the dense compute and the pooled embeddings on the wire; ``emb_dtype`` the
    table storage; ``optimizer`` the embedding optimizer (``rowwise_adagrad``: one fp32 state
    per row, as TorchRec's fused EXACT_ROWWISE_ADAGRAD; ``adagrad``: one per element)."""

    name: str
    table_rows: tuple[int, ...]
    pooling: tuple[float, ...]
    embedding_dim: int = 128
    dense_features: int = 13
    bottom_mlp: tuple[int, ...] = (512, 256, 128)
    top_mlp: tuple[int, ...] = (1024, 1024, 512, 256, 1)
    interaction: str = "dcnv2"
    cross_layers: int = 3
    cross_rank: int = 512
    dtype: str = "bf16"
    emb_dtype: str = "fp32"
    optimizer: str = "rowwise_adagrad"

    def __post_init__(self) -> None:
        where = f"DLRMSpec {self.name!r}"
        if not self.table_rows or len(self.pooling) != len(self.table_rows):
            raise ClusterError(f"{where}: pooling has {len(self.pooling)} entries and "
                               f"table_rows {len(self.table_rows)}; expected one per table")
        for field in ("table_rows", "pooling", "bottom_mlp", "top_mlp"):
            whole = field != "pooling"  # lookups per sample may be a mean; sizes may not
            kinds = int if whole else int | float
            for i, v in enumerate(getattr(self, field)):
                if isinstance(v, bool) or not isinstance(v, kinds) or not v > 0 \
                        or not math.isfinite(v):
                    raise ClusterError(f"{where}: {field}[{i}]={v!r}; expected a positive "
                                       + ("int" if whole else "finite number"))
        for field in ("embedding_dim", "dense_features", "cross_layers", "cross_rank"):
            v = getattr(self, field)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ClusterError(f"{where}: {field}={v!r}; expected a positive int")
        if self.interaction not in INTERACTIONS:
            raise ClusterError(f"{where}: interaction={self.interaction!r}; expected one of "
                               f"{INTERACTIONS}")
        if self.optimizer not in OPTIMIZERS:
            raise ClusterError(f"{where}: optimizer={self.optimizer!r}; expected one of "
                               f"{OPTIMIZERS}")
        if self.bottom_mlp[-1] != self.embedding_dim:
            raise ClusterError(f"{where}: bottom_mlp ends in {self.bottom_mlp[-1]!r}; expected "
                               f"embedding_dim={self.embedding_dim} (it joins the embeddings)")
        for field in ("dtype", "emb_dtype"):
            try:
                ops.dtype_bytes(getattr(self, field))
            except KeyError:
                raise ClusterError(f"{where}: {field}={getattr(self, field)!r}; expected a "
                                   "dtype such as 'bf16', 'fp16' or 'fp32'") from None

    @property
    def tables(self) -> int:
        return len(self.table_rows)

    @property
    def interaction_width(self) -> int:
        """Features entering the top MLP (DCNv2: the concatenated vectors; dot: the bottom
        output plus the pairwise dots of the tables' and the bottom's vectors)."""
        feats = self.tables + 1
        if self.interaction == "dcnv2":
            return feats * self.embedding_dim
        return self.embedding_dim + feats * (feats - 1) // 2

    @property
    def dense_params(self) -> int:
        mlp = _mlp_params((self.dense_features, *self.bottom_mlp))
        mlp += _mlp_params((self.interaction_width, *self.top_mlp))
        if self.interaction == "dcnv2":
            width = self.interaction_width
            mlp += self.cross_layers * (2 * width * self.cross_rank + width)
        return mlp

    @property
    def table_bytes(self) -> float:
        return sum(self.table_rows) * self.embedding_dim * ops.dtype_bytes(self.emb_dtype)

    def state_bytes_per_row(self, cols: int) -> float:
        """Optimizer state per table row of ``cols`` columns."""
        return {"sgd": 0.0, "adagrad": cols * FP32_BYTES,
                "rowwise_adagrad": float(FP32_BYTES)}[self.optimizer]


def _mlp_params(sizes: tuple[int, ...]) -> int:
    return sum(k * n + n for k, n in zip(sizes, sizes[1:], strict=False))


def dlrm_spec(name: str = "mlperf-dlrm-dcnv2", **overrides: object) -> DLRMSpec:
    """A named DLRM (``"mlperf-dlrm-dcnv2"``: the MLPerf Training v3.0+ benchmark), with
    fields overridden by keyword."""
    presets = {
        # source: mlcommons/training recommendation_v2/torchrec_dlrm README and the v3.0
        # HugeCTR train.py: dim 128, bottom 512-256-128, DCNv2 3 layers of rank 512, top
        # 1024-1024-512-256-1, Adagrad. assumption: fp32 tables and state (HugeCTR keeps
        # the embedding vectors in fp32 under mixed precision; the reference is fp32).
        "mlperf-dlrm-dcnv2": dict(table_rows=MLPERF_DCNV2_ROWS, pooling=MLPERF_DCNV2_HOTNESS,
                                  interaction="dcnv2", optimizer="rowwise_adagrad"),
    }
    if name not in presets:
        raise ClusterError(f"dlrm model {name!r} is not known; expected one of "
                           f"{sorted(presets)} or a DLRMSpec")
    fields = {**presets[name], **overrides}
    try:
        return DLRMSpec(name=name, **fields)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ClusterError(f"dlrm_spec({name!r}): {exc}; expected DLRMSpec fields") from None


def resolve_spec(model: str | DLRMSpec) -> DLRMSpec:
    if isinstance(model, DLRMSpec):
        return model
    if isinstance(model, str):
        return dlrm_spec(model)
    raise ClusterError(f"model={model!r}; expected a DLRMSpec or a preset name")


def _linear(b: int, k: int, n: int, dtype: str, name: str, train: bool,
            first: bool = False) -> list[ops.Op]:
    """A linear layer over ``b`` samples: forward GEMM, and in training the data gradient
    (none for the first layer: the dense inputs need none) and the weight gradient."""
    out: list[ops.Op] = [ops.matmul(b, n, k, dtype, name=f"{name}_fwd")]
    if train:
        if not first:
            out.append(ops.matmul(b, k, n, dtype, name=f"{name}_dgrad"))
        out.append(ops.matmul(k, n, b, dtype, name=f"{name}_wgrad"))
    return out


def _mlp_ops(b: int, sizes: tuple[int, ...], dtype: str, name: str, train: bool,
             first_is_input: bool) -> list[ops.Op]:
    out: list[ops.Op] = []
    for i, (k, n) in enumerate(zip(sizes, sizes[1:], strict=False)):
        out += _linear(b, k, n, dtype, f"{name}{i}", train, first=first_is_input and i == 0)
        # ReLU forward; its backward is a mask multiply of the same size
        out.append(ops.elementwise(b * n, "relu", 1, 1, dtype, name=f"{name}{i}_relu"))
        if train:
            out.append(ops.elementwise(b * n, "mul", 2, 1, dtype, name=f"{name}{i}_relu_bwd"))
    return out


def _interaction_ops(spec: DLRMSpec, b: int, train: bool) -> list[ops.Op]:
    d, feats, dt = spec.embedding_dim, spec.tables + 1, spec.dtype
    width = spec.interaction_width
    out: list[ops.Op] = [ops.elementwise(b * feats * d, "copy", 1, 1, dt, name="concat")]
    if spec.interaction == "dot":
        out.append(ops.matmul(feats, feats, d, dt, batch=b, name="interaction_bmm"))
        if train:  # dZ/dT = (dZ + dZᵀ)·T: one batched GEMM of the same size
            out.append(ops.matmul(feats, d, feats, dt, batch=b, name="interaction_bmm_bwd"))
        return out
    for layer in range(spec.cross_layers):
        # DCNv2 low-rank cross: x_{l+1} = x0 ⊙ (U(Vᵀ x_l) + b) + x_l (arXiv:2008.13535 eq. 1)
        out += _linear(b, width, spec.cross_rank, dt, f"cross{layer}_v", train)
        out += _linear(b, spec.cross_rank, width, dt, f"cross{layer}_u", train)
        out.append(ops.elementwise(b * width, "mul", 3, 1, dt, name=f"cross{layer}_mix"))
        if train:  # gradients to x0, to U(Vᵀx) and to x_l
            out.append(ops.elementwise(b * width, "mul", 3, 2, dt, name=f"cross{layer}_bwd"))
    return out


def dense_ops(spec: DLRMSpec, batch: int, train: bool) -> list[ops.Op]:
    """The data-parallel part of one step on one chip holding ``batch`` samples."""
    out = _mlp_ops(batch, (spec.dense_features, *spec.bottom_mlp), spec.dtype, "bottom", train,
                   first_is_input=True)
    out += _interaction_ops(spec, batch, train)
    out += _mlp_ops(batch, (spec.interaction_width, *spec.top_mlp), spec.dtype, "top", train,
                    first_is_input=False)
    if train:
        out.append(ops.elementwise(batch, "mul", 2, 1, "fp32", name="bce_loss"))
        # dense Adagrad: fp32 master weight, state and gradient read, weight and state written
        out.append(ops.elementwise(spec.dense_params, "mul", 3, 2, "fp32", name="dense_adagrad"))
    return out


@lru_cache(maxsize=4096)
def _op_seconds(op: ops.Op, chip: ChipSpec) -> float:
    try:
        return estimate(op, chip).seconds
    except ChipforgeError as exc:
        raise ClusterError(f"chip {chip.name!r} cannot run {op.name or op}: {exc}") from None


def activation_bytes(spec: DLRMSpec, batch: float, train: bool) -> float:
    """Activation memory for ``batch`` samples on one chip: the pooled vectors received,
    plus in training every layer's input and output kept for the backward pass, in
    inference the widest layer's input and output alive at once.
    assumption: one copy per layer input/output (pre- and post-ReLU fused), 16-bit."""
    width = spec.interaction_width
    widths = [spec.dense_features, *spec.bottom_mlp, width, *spec.top_mlp]
    if spec.interaction == "dcnv2":
        widths += [spec.cross_rank, width] * spec.cross_layers
    pooled = spec.tables * spec.embedding_dim
    per_sample = pooled + (sum(widths) if train else 2 * max(widths))
    return batch * per_sample * ops.dtype_bytes(spec.dtype)


def dense_seconds(spec: DLRMSpec, chip: ChipSpec, batch: int, train: bool) -> tuple[float, float]:
    """(forward, backward) seconds of the dense part for ``batch`` samples on ``chip``."""
    try:
        dense = dense_ops(spec, batch, train)
    except ChipforgeError as exc:
        raise ClusterError(f"a batch of {batch!r} samples per chip cannot be built: {exc}; "
                           "expected a smaller batch") from None
    fwd = bwd = 0.0
    for op in dense:
        is_bwd = any(tag in op.name for tag in ("_dgrad", "_wgrad", "_bwd", "adagrad", "loss"))
        s = _op_seconds(op, chip)
        if is_bwd:
            bwd += s
        else:
            fwd += s
    return fwd, bwd


@lru_cache(maxsize=64)
def gather_bytes_per_s(chip: ChipSpec) -> float:
    """The chip's HBM bandwidth for embedding gathers as the single-chip engine models them:
    the bytes per second of a large reference EmbeddingBag (1M lookups of 128 fp32 values
    from a 40M-row table), so the table traffic below runs at the engine's gather speed."""
    op = ops.embedding_bag(40_000_000, 128, 65536, 16, 1, "fp32", name="gather_reference")
    return op.bytes / _op_seconds(op, chip)


def unique_rows(rows: float, lookups: float) -> float:
    """Expected distinct rows touched by ``lookups`` uniform draws from ``rows`` rows:
    rows·(1 − (1 − 1/rows)^lookups) ≈ rows·(1 − e^(−lookups/rows)).
    assumption: uniform ids (the MLPerf synthetic multi-hot ids are drawn uniformly); a
    power-law trace touches fewer rows, so this bounds the update traffic from above."""
    if rows <= 0 or lookups <= 0:
        return 0.0
    return rows * -math.expm1(-lookups / rows)


@dataclass(frozen=True)
class ShardTraffic:
    """HBM bytes one embedding shard moves per step."""

    forward_bytes: float
    backward_bytes: float


def shard_traffic(spec: DLRMSpec, rows: float, cols: int, bags: float, lookups: float,
                  train: bool) -> ShardTraffic:
    """Bytes for a shard of ``rows``×``cols`` serving ``bags`` pooled outputs from
    ``lookups`` lookups per step.

    Forward (FBGEMM TBE-style fused lookup): ids read, one row slice per lookup, one pooled
    vector written per bag. Backward: the bag's pooled gradient read once per lookup, the ids
    sorted (read and written twice), then each distinct row read and written with its
    optimizer state (fused update, no gradient tensor kept)."""
    emb_b, wire_b = ops.dtype_bytes(spec.emb_dtype), ops.dtype_bytes(spec.dtype)
    fwd = lookups * (INDEX_BYTES + cols * emb_b) + bags * cols * wire_b
    if not train:
        return ShardTraffic(fwd, 0.0)
    touched = unique_rows(rows, lookups)
    bwd = (lookups * cols * wire_b + 4 * lookups * INDEX_BYTES
           + touched * 2 * (cols * emb_b + spec.state_bytes_per_row(cols)))
    return ShardTraffic(fwd, bwd)
