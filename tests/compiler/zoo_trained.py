"""Classifiers from the zoo trained briefly on a synthetic, learnable task, so their logits
are decisive (a random network's near-tied logits make top-1 agreement meaningless).

The task: each class c has a fixed random prototype input; samples are the prototype plus
Gaussian noise. A few hundred Adam steps on CPU reach ~100% accuracy. Deterministic.
"""

from __future__ import annotations

import torch
import zoo

CLASSES = 10


def _task(shape: tuple[int, ...], seed: int):
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(CLASSES, *shape, generator=g)

    def sample(n: int, sample_seed: int):
        gs = torch.Generator().manual_seed(sample_seed)
        labels = torch.randint(0, CLASSES, (n,), generator=gs)
        return protos[labels] + 0.8 * torch.randn(n, *shape, generator=gs), labels

    return sample


def _train(model: torch.nn.Module, sample, steps: int = 300) -> torch.nn.Module:
    torch.manual_seed(0)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        x, y = sample(64, step)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


_CACHE: dict = {}


def trained(name: str):
    """(model, sample(n, seed) -> (inputs, labels)) for "mlp" or "small_cnn"."""
    if name not in _CACHE:
        model, inputs = zoo.FACTORIES[name]()
        sample = _task(tuple(inputs[0].shape[1:]), seed=11)
        _CACHE[name] = (_train(model, sample), sample)
    return _CACHE[name]
