"""Tiny random-weight Hugging Face models of the model suite and their example inputs.

Nothing is downloaded: each model is built from a small config (2 layers, hidden 32) with
seeded random weights. Import only where ``transformers`` is installed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import transformers as tf

VOCAB = 128
SEQ = 8
IMAGE = 16


def _text_config(cls, **extra):
    return cls(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=64, max_position_embeddings=64, **extra)


def _decoder(config_cls, model_cls, **extra) -> Callable[[], torch.nn.Module]:
    return lambda: model_cls(_text_config(config_cls, num_key_value_heads=2, bos_token_id=1,
                                          eos_token_id=2, pad_token_id=0, **extra))


BUILDERS: dict[str, Callable[[], torch.nn.Module]] = {
    "gpt2": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(
        vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=1,
        eos_token_id=2)),
    "bert": lambda: tf.BertForSequenceClassification(_text_config(tf.BertConfig, num_labels=8)),
    "roberta": lambda: tf.RobertaForSequenceClassification(_text_config(
        tf.RobertaConfig, num_labels=8, pad_token_id=1, bos_token_id=0, eos_token_id=2)),
    "llama": _decoder(tf.LlamaConfig, tf.LlamaForCausalLM),
    "mistral": _decoder(tf.MistralConfig, tf.MistralForCausalLM, sliding_window=4),
    "qwen2": _decoder(tf.Qwen2Config, tf.Qwen2ForCausalLM),
    "mixtral": _decoder(tf.MixtralConfig, tf.MixtralForCausalLM, num_local_experts=4,
                        num_experts_per_tok=2),
    "t5": lambda: tf.T5ForConditionalGeneration(tf.T5Config(
        vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)),
    "vit": lambda: tf.ViTForImageClassification(tf.ViTConfig(
        image_size=IMAGE, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, num_labels=8)),
    "resnet": lambda: tf.ResNetForImageClassification(tf.ResNetConfig(
        num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
        layer_type="basic", num_labels=8)),
    "convnext": lambda: tf.ConvNextForImageClassification(tf.ConvNextConfig(
        num_channels=3, num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], patch_size=4,
        num_labels=8)),
}
IMAGES = {"vit", "resnet", "convnext"}


def build(name: str) -> torch.nn.Module:
    """The model ``name`` with seeded random weights, in eval mode."""
    torch.manual_seed(0)
    return BUILDERS[name]().eval()


def example_inputs(name: str, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Positional inputs: token ids (ids 3.. avoid the special tokens) for text models, plus
    decoder ids for T5; a batch of images for vision models."""
    g = torch.Generator().manual_seed(seed)
    if name in IMAGES:
        return (torch.randn(batch, 3, IMAGE, IMAGE, generator=g),)
    ids = torch.randint(3, VOCAB, (batch, SEQ), generator=g)
    if name == "t5":
        return ids, torch.randint(3, VOCAB, (batch, SEQ // 2), generator=g)
    return (ids,)


def logits(model, name: str, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``model``'s logits on ``inputs`` as a user calls it: T5 takes its decoder ids by
    keyword; decoders keep their default cache (its tensors are outputs too)."""
    if name == "t5":
        return model(inputs[0], decoder_input_ids=inputs[1]).logits
    return model(*inputs).logits
