"""capture() takes models as written (issue 14): whatever a model returns flattens to its
tensors in order (tuples, lists, dicts, ModelOutput-like mappings, cache-like objects;
None and Python numbers dropped), and a model torch.export cannot trace fails with one
CompileError line, never torch's own exception. The oracle is PyTorch eager."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from chipforge.compiler import ChipRunner, CompileError, capture  # noqa: E402

CHIP = "forge-i1"


class Layer:
    """A cache layer as transformers writes one: tensors among other attributes."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys, self.values, self.is_initialized, self.device = keys, values, True, "cpu"


class Cache:
    def __init__(self, layers: list[Layer]) -> None:
        self.layers, self.offloading = layers, False


class Nested(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(4, 3)
        self.b = torch.nn.Linear(4, 2)

    def forward(self, x):
        h = self.a(x)
        return {"logits": h.relu(), "skip": None, "extra": (self.b(x), [h * 2.0, 7]),
                "cache": Cache([Layer(h + 1.0, h - 1.0)])}


def test_outputs_flatten_in_order():
    torch.manual_seed(0)
    model, x = Nested().eval(), torch.randn(2, 4)
    with torch.no_grad():
        out = model(x)
    layer = out["cache"].layers[0]
    want = [out["logits"], out["extra"][0], out["extra"][1][0], layer.keys, layer.values]
    graph = capture(model, (x,))
    assert graph.inputs == ["x"] and len(graph.outputs) == len(want)
    got = ChipRunner(graph, CHIP, "bf16")(x)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert torch.allclose(g, w, atol=2e-2 * w.abs().max().item())


class Branchy(torch.nn.Module):
    def forward(self, x):
        return x * 2.0 if x.sum() > 0 else x - 1.0


def test_export_failure_is_one_compile_error_line():
    with pytest.raises(CompileError) as caught:
        capture(Branchy(), (torch.randn(3),))
    message = str(caught.value)
    assert message.startswith("torch.export could not capture the model: ")
    assert "\n" not in message and "torch.compile" in message


class NoTensor(torch.nn.Module):
    def forward(self, x):
        return None


def test_a_model_without_tensor_outputs_is_refused():
    with pytest.raises(CompileError, match="NoTensor returns no tensor"):
        capture(NoTensor(), (torch.randn(3),))


def test_keyword_inputs_must_be_a_dict():
    with pytest.raises(CompileError, match="example_kwargs must be a dict"):
        capture(Nested(), (torch.randn(2, 4),), example_kwargs=[1])
