"""The op one row of the measured MoE table (``h100/moe.csv``) times.

aiconfigurator's collector (collector/trtllm/collect_moe.py) times one
``CutlassFusedMoE.forward`` on rank 0 of a ``moe_tp_size`` x ``moe_ep_size`` mapping: all
``num_tokens`` tokens, logits over all ``num_experts``, ``num_experts / moe_ep_size``
local experts of ``inter_size / moe_tp_size`` columns, the token spread ``distribution``.

The experts are non-gated (an up-projection of ``inter_size / tp`` columns, squared ReLU,
down-projection): the table's shapes (512 experts, top-22, inter 2688) are Nemotron 3
Super's, whose MoE is squared-ReLU (TensorRT-LLM's ``nemotron_3_super`` MoE test case:
``ActivationType.Relu2``, intermediate 2688), and the data rule a gated layer out: at 64-256
tokens with every expert active, three ``hidden x inter/tp`` matrices per expert would
have to stream at 3.9-4.6 TB/s, beyond the H100's 3.35 TB/s HBM peak; two matrices give
2.6-3.0 TB/s (78-91 % of peak) on every shape.
"""

from __future__ import annotations

from chipforge.ops import MoE, moe
from chipforge.perf._measured import table_dtype


def moe_call(row: dict[str, str]) -> MoE:
    """The fused MoE call a row of moe.csv measured (its ``latency_ms`` is this op's)."""
    return moe(tokens=int(row["num_tokens"]), hidden=int(row["hidden_size"]),
               inter=int(row["inter_size"]), topk=int(row["topk"]),
               experts=int(row["num_experts"]), tp=int(row["moe_tp_size"]),
               ep=int(row["moe_ep_size"]), distribution=row["distribution"],
               gated=False, dtype=table_dtype(row["moe_dtype"]))
