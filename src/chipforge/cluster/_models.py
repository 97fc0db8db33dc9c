"""What a model argument names: a config name or config.json path, or an LLMConfig (one
resolution for the training, serving and fleet planners)."""

from __future__ import annotations

from chipforge.errors import ChipforgeError, ClusterError
from chipforge.workloads import LLMConfig, load_llm_config


def resolve_model(model: str | LLMConfig) -> LLMConfig:
    if isinstance(model, LLMConfig):
        return model
    if not isinstance(model, str):
        raise ClusterError(f"model: {model!r}; expected a config name or an LLMConfig")
    try:
        return load_llm_config(model)
    except ChipforgeError as exc:
        raise ClusterError(f"model={model!r}: {exc}") from None
