"""The platform's own models (``chipforge.examples``: DLRM, TwoTower, DIN) on forge-i1
through ``torch.compile``, against PyTorch fp32 on the same inputs: bf16 within 2e-2 of
the largest output, int8 and fp8 post-training quantization with cosine >= 0.99 on
inputs the calibration never saw, every graph on the chip. They need torch only. A model
that cannot run yet is a strict xfail naming what is missing."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from suite import (  # noqa: E402
    BF16_REL,
    CHIP,
    PTQ_COSINE,
    QUANTS,
    cosine,
    on_chip,
    quantized_nodes,
    relative_error,
)

from chipforge.compiler import ChipRunner, capture  # noqa: E402
from chipforge.examples import DIN, DLRM, TwoTower  # noqa: E402

MODELS = {"dlrm": DLRM, "twotower": TwoTower, "din": DIN}
# name -> what is missing, as the error names it (a strict xfail: it fails until it lands)
MISSING: dict[str, str] = {}
BATCH = 4


def _params(names, missing: dict[str, str]) -> list:
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=missing[name]))
            if name in missing else name for name in names]


def _build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[name]().eval()


def test_example_inputs_hold_the_edge_cases():
    """The seeded inputs exercise what the models must handle: an empty bag (DLRM, its
    offsets repeat), padded history (DIN: id 0 after a short history)."""
    _, _, offsets = _build("dlrm").example_inputs(BATCH)
    assert (offsets[:, 1:] == offsets[:, :-1]).any()
    history, _, _ = _build("din").example_inputs(BATCH)
    assert (history == 0).any() and (history != 0).any()


@pytest.mark.parametrize("name", _params(MODELS, MISSING))
def test_bf16_inference_matches_fp32(name):
    model = _build(name)
    inputs = model.example_inputs(BATCH)
    with torch.no_grad():
        want = model(*inputs)
    got, backend = on_chip(model, lambda m: m(*inputs))
    assert backend.summary().all_on_chip, str(backend.summary())
    assert relative_error(got, want) <= BF16_REL


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("name", _params(MODELS, MISSING))
def test_ptq_keeps_cosine(name, quant):
    model = _build(name)
    inputs = model.example_inputs(BATCH)
    calibration = [model.example_inputs(BATCH, seed=seed) for seed in (1, 2, 3, 4)]
    with torch.no_grad():
        want = model(*inputs)
    got, backend = on_chip(model, lambda m: m(*inputs), quant=quant, calibration=calibration)
    assert backend.summary().all_on_chip, str(backend.summary())
    assert quantized_nodes(backend) > 0
    assert cosine(got, want) >= PTQ_COSINE


@pytest.mark.parametrize("name", _params(MODELS, MISSING))
def test_capture_runs_on_the_chip(name):
    """capture() then ChipRunner, the path ``chipforge compile`` takes."""
    model = _build(name)
    inputs = model.example_inputs(BATCH)
    with torch.no_grad():
        want = model(*inputs)
    graph = capture(model, inputs, name=name)
    got = ChipRunner(graph, CHIP, "bf16")(*inputs)[0]
    assert got.shape == want.shape
    assert relative_error(got, want) <= BF16_REL


@pytest.mark.parametrize("name", _params(MODELS, MISSING))
def test_inference_without_no_grad(name):
    """An eval-mode model called without torch.no_grad() (its parameters require grad)."""
    model = _build(name)
    inputs = model.example_inputs(BATCH)
    with torch.no_grad():
        want = model(*inputs)
    got, backend = on_chip(model, lambda m: m(*inputs), no_grad=False)
    assert backend.summary().all_on_chip, str(backend.summary())
    assert relative_error(got, want) <= BF16_REL
