"""Training real models on the simulated forge-t1 (issue 14, section 2): small random-config
Llama, BERT and ViT (Hugging Face ``transformers``) and the platform's DLRM, 20 steps each.

Forward and backward run through ``torch.compile(backend=chipforge.torch_backend(...))``
(aot_autograd; ``strict=True``, so any graph break fails), the AdamW update through
``make_chip_adamw``: all three on the chip's simulator in bf16 compute with fp32 master
weights. The oracle is the same training in PyTorch fp32 on the CPU: a copy of the model
(same initial weights), the same batches, ``torch.optim.AdamW`` with the same settings.
Every step's loss must be within 2% of PyTorch's. Dropout is off in the configs (the chip
has no RNG; dropout with p > 0 is a clean error).
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import chipforge  # noqa: E402
from chipforge.compiler import CompileError, make_chip_adamw  # noqa: E402

STEPS = 20
LR = 3e-3


class Loss(torch.nn.Module):
    """The model and its loss as one module: what torch.compile is given."""

    def __init__(self, model: torch.nn.Module, loss_of):
        super().__init__()
        self.model, self.loss_of = model, loss_of

    def forward(self, *batch):
        return self.loss_of(self.model, *batch)


def _transformers():
    return pytest.importorskip("transformers")


def llama():
    t = _transformers()
    config = t.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                           max_position_embeddings=32)
    data = [(torch.randint(0, 64, (2, 8)),) for _ in range(4)]
    return t.LlamaForCausalLM(config), data, lambda m, ids: m(input_ids=ids, labels=ids).loss


def bert():
    t = _transformers()
    config = t.BertConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=32,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    data = [(torch.randint(0, 64, (2, 8)),) for _ in range(4)]
    return t.BertForMaskedLM(config), data, lambda m, ids: m(input_ids=ids, labels=ids).loss


def vit():
    t = _transformers()
    config = t.ViTConfig(image_size=16, patch_size=8, num_channels=3, hidden_size=32,
                         num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         num_labels=5, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         problem_type="single_label_classification")  # set, or the loss sets it
    data = [(torch.randn(2, 3, 16, 16), torch.randint(0, 5, (2,))) for _ in range(4)]
    return (t.ViTForImageClassification(config), data,
            lambda m, x, y: m(pixel_values=x, labels=y).loss)


def dlrm():
    from chipforge.examples import DLRM

    model = DLRM()
    data = [model.example_inputs(batch=4, seed=s) + (torch.randint(0, 2, (4, 1)).float(),)
            for s in range(4)]
    return model, data, lambda m, d, i, o, y: F.binary_cross_entropy_with_logits(m(d, i, o), y)


MODELS = {"llama": llama, "bert": bert, "vit": vit, "dlrm": dlrm}
XFAIL: dict[str, str] = {}  # model -> the missing op, for a strict xfail


def _train(make):
    """(chip losses, PyTorch losses, backend, optimizer) of STEPS steps over the model's
    batches, cycled."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model, data, loss_of = make()
    model.train()
    reference = copy.deepcopy(model)
    backend = chipforge.torch_backend(chip="forge-t1", strict=True)
    compiled = torch.compile(Loss(model, loss_of), backend=backend)
    opt = make_chip_adamw("forge-t1")(model.parameters(), lr=LR)
    ref_opt = torch.optim.AdamW(reference.parameters(), lr=LR)
    chip, ref = [], []
    for step in range(STEPS):
        batch = data[step % len(data)]
        loss = compiled(*batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        want = loss_of(reference, *batch)
        want.backward()
        ref_opt.step()
        ref_opt.zero_grad()
        chip.append(loss.item())
        ref.append(want.item())
    return chip, ref, backend, opt


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(
    strict=True, reason=XFAIL[n])) if n in XFAIL else n for n in MODELS])
def test_model_trains_on_forge_t1_like_pytorch(name):
    chip, ref, backend, opt = _train(MODELS[name])
    for step, (got, want) in enumerate(zip(chip, ref)):
        assert abs(got - want) <= 0.02 * abs(want), (step, got, want)
    # it learns: the last pass over the 4 batches scores below the first
    assert sum(chip[-4:]) < sum(chip[:4])
    summary = backend.summary()
    assert summary.all_on_chip
    # forward, backward and optimizer each ran on the chip every step
    assert sorted(name for name, _, _ in summary.graphs) == ["backward", "forward"]
    assert all(calls == STEPS for _, _, calls in summary.graphs)
    assert len(opt.results) == STEPS and all(r.cycles > 0 for r in opt.results)


def test_dropout_while_training_is_a_clean_error():
    """The chip has no RNG: dropout with p > 0 in training mode fails by name."""
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.1)).train()
    backend = chipforge.torch_backend(chip="forge-t1")
    with pytest.raises(Exception) as info:
        torch.compile(model, backend=backend, dynamic=False)(torch.randn(2, 8)).sum()
    error = info.value
    while error is not None and not isinstance(error, CompileError):
        error = getattr(error, "inner_exception", None) or error.__cause__
    assert error is not None and "dropout" in str(error) and "no RNG" in str(error)
