"""The models the README compiles, runs and trains on the simulated chips.

- ``make()`` is the factory ``chipforge compile examples/model.py:make`` calls: it returns
  ``(module, example_inputs, calibration)``, the module an nn.Module, the example inputs a
  tuple of tensors and the calibration (for ``--quant int8`` / ``fp8``) a list of such
  tuples.
- ``make_training()`` returns ``(model_with_loss, batch)``: a classifier whose forward
  returns the usual ``F.cross_entropy(logits, targets)`` with integer class targets, and
  one batch ``(x, targets)`` for ``loss = step(*batch)``.

Small sizes keep the simulator fast; change them freely.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURES = 64
HIDDEN = 128
CLASSES = 10
BATCH = 8


class MLP(nn.Module):
    """Two linear layers with a GELU between them."""

    def __init__(self, features: int = FEATURES, hidden: int = HIDDEN, classes: int = CLASSES):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class WithLoss(nn.Module):
    """A model and its loss in one module: ``forward(x, targets)`` returns the mean
    cross-entropy of the logits against integer class targets."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.model(x), targets)


def make(seed: int = 0):
    """(module, example_inputs, calibration) for ``chipforge compile``."""
    torch.manual_seed(seed)
    model = MLP().eval()
    x = torch.randn(BATCH, FEATURES)
    calibration = [(torch.randn(BATCH, FEATURES),) for _ in range(4)]
    return model, (x,), calibration


def make_training(seed: int = 0):
    """(model_with_loss, batch): batch = (x, targets), targets int64 class indices."""
    torch.manual_seed(seed)
    model_with_loss = WithLoss(MLP())
    x = torch.randn(BATCH, FEATURES)
    targets = torch.randint(0, CLASSES, (BATCH,))
    return model_with_loss, (x, targets)
