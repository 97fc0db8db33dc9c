"""The ``torch.compile`` backend as models are written (issue 14): ``view`` after a
reshape of a transposed tensor (GPT-2's attention), torch.export's own failures as clean
errors, both grad modes, and shapes that change between calls. The oracle is PyTorch on
the same inputs."""

from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip("torch")

import chipforge  # noqa: E402
from chipforge.compiler import CompileError  # noqa: E402


def _compile_error(info) -> CompileError | None:
    """The CompileError a dynamo exception carries (dynamo wraps a backend's error)."""
    error = info.value
    while error is not None and not isinstance(error, CompileError):
        error = getattr(error, "inner_exception", None) or error.__cause__
    return error


def _close(got, want, tol: float = 2e-2) -> bool:
    """bf16 compute: within ``tol`` of the largest output."""
    return bool((got - want).abs().max() <= tol * want.abs().max())


class TransposedView(torch.nn.Module):
    """GPT-2's attention tail: heads [B, H, T, D] moved back to [B, T, H*D] with transpose,
    contiguous and reshape, then ``.view(-1, C)`` for the projection."""

    def __init__(self, heads: int = 2, dim: int = 8):
        super().__init__()
        self.heads = heads
        self.proj = torch.nn.Linear(heads * dim, heads * dim)

    def forward(self, x):
        b, t, c = x.shape
        h = x.view(b, t, self.heads, -1).transpose(1, 2)
        h = torch.nn.functional.scaled_dot_product_attention(h, h, h)
        h = h.transpose(1, 2).contiguous().reshape(b, t, -1).contiguous()
        return self.proj(h.view(-1, c)).view(b, t, c)


def test_view_of_a_reshaped_transpose_runs_on_the_chip():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model, x = TransposedView().eval(), torch.randn(2, 4, 16)
    backend = chipforge.torch_backend(chip="forge-i1")
    with torch.no_grad():
        got = torch.compile(model, backend=backend, dynamic=False)(x)
        want = model(x)
    assert _close(got, want)
    assert backend.summary().all_on_chip


@pytest.mark.slow
def test_gpt2_runs_through_torch_compile():
    transformers = pytest.importorskip("transformers")
    torch._dynamo.reset()
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=128, n_embd=64, n_layer=2, n_head=4,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2Model(config).eval()
    ids = torch.randint(0, 128, (2, 16))
    backend = chipforge.torch_backend(chip="forge-i1")
    with torch.no_grad():
        got = torch.compile(model, backend=backend)(ids).last_hidden_state
        want = model(ids).last_hidden_state
    assert _close(got, want)
    assert backend.summary().all_on_chip


def test_a_torch_export_failure_is_a_clean_error(monkeypatch):
    """Whatever torch.export raises on dynamo's graph comes back as a CompileError."""
    import torch.export._trace

    def broken(*args, **kwargs):
        raise ValueError("Cannot view a tensor with shape [2, 16, 64]")

    monkeypatch.setattr(torch.export._trace, "_export", broken)
    torch._dynamo.reset()
    backend = chipforge.torch_backend(chip="forge-i1")
    with torch.no_grad(), pytest.raises(Exception) as info:
        torch.compile(torch.nn.Linear(4, 4), backend=backend, dynamic=False)(torch.randn(2, 4))
    error = _compile_error(info)
    assert error is not None
    assert "torch.export" in str(error) and "ValueError: Cannot view" in str(error)
    assert len(backend.failures) == 1


def test_an_aot_autograd_failure_is_a_clean_error(monkeypatch):
    """Whatever aot_autograd raises while tracing for training comes back as a
    CompileError."""
    import torch._functorch.aot_autograd as aot

    def broken(*args, **kwargs):
        raise RuntimeError("tracing failed")

    monkeypatch.setattr(aot, "prepare_aot_module_simplified", broken)
    torch._dynamo.reset()
    backend = chipforge.torch_backend(chip="forge-t1")
    with pytest.raises(Exception) as info:
        torch.compile(torch.nn.Linear(4, 4), backend=backend, dynamic=False)(torch.randn(2, 4))
    error = _compile_error(info)
    assert error is not None
    assert "aot_autograd" in str(error) and "RuntimeError: tracing failed" in str(error)
    assert len(backend.failures) == 1


LOG = logging.getLogger("chipforge.tests")


class Logging(torch.nn.Module):
    """A logging call dynamo cannot trace (Hugging Face models warn so): a graph break."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)

    def forward(self, x):
        y = self.a(x).relu()
        LOG.debug("between the layers")
        return self.b(y)


def test_a_graph_break_names_what_dynamo_could_not_trace():
    torch._dynamo.reset()
    model, x = Logging().eval(), torch.randn(2, 8)
    backend = chipforge.torch_backend(chip="forge-i1")
    with torch.no_grad(), pytest.warns(chipforge.compiler.ChipFallbackWarning) as caught:
        got = torch.compile(model, backend=backend, dynamic=False)(x)
        want = model(x)
    [brk] = backend.summary().breaks
    assert "logging.Logger method not supported" in brk.reason
    assert "ignore_logging_functions" in brk.reason
    assert any("logging.Logger" in str(w.message) for w in caught)
    assert _close(got, want)


# ---- both grad modes ---------------------------------------------------------------------


class NormMLP(torch.nn.Module):
    """Layer norms whose saved statistics a training forward returns (mean and rstd)."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.norm = torch.nn.LayerNorm(dim)
        self.fc = torch.nn.Linear(dim, dim)
        self.out_norm = torch.nn.LayerNorm(dim)

    def forward(self, x):
        return self.out_norm(torch.relu(self.fc(self.norm(x))) + x)


@pytest.mark.parametrize("no_grad", [True, False])
def test_eval_model_in_both_grad_modes(no_grad):
    """An eval-mode model gives PyTorch's outputs with and without torch.no_grad(); without
    it the outputs can be differentiated (the training path), with the inputs' gradient
    matching PyTorch's."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = NormMLP().eval()
    x = (torch.randn(4, 16) * 3 + 1).requires_grad_(not no_grad)
    backend = chipforge.torch_backend(chip="forge-i1")
    compiled = torch.compile(model, backend=backend, dynamic=False)
    if no_grad:
        with torch.no_grad():
            got, want = compiled(x), model(x)
        assert _close(got, want)
        assert [name for name, _, _ in backend.summary().graphs] == ["model"]
        return
    weights = torch.randn(4, 16)  # a loss whose gradient a layer norm does not cancel
    got = compiled(x)
    assert got.requires_grad
    (got * weights).sum().backward()
    got_grad = x.grad.clone()
    x.grad = None
    want = model(x)
    (want * weights).sum().backward()
    assert _close(got.detach(), want.detach())
    assert _close(got_grad, x.grad, 3e-2)
    assert sorted(name for name, _, _ in backend.summary().graphs) == ["backward", "forward"]
    assert backend.summary().all_on_chip


# ---- shapes that change between calls -------------------------------------------------------


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 4)).eval()


def test_dynamic_true_compiles_each_shape_once():
    torch._dynamo.reset()
    model = _mlp()
    backend = chipforge.torch_backend(chip="forge-i1")
    compiled = torch.compile(model, backend=backend, dynamic=True)
    with torch.no_grad():
        for batch in (2, 3, 2, 3, 5):
            x = torch.randn(batch, 8)
            got = compiled(x)
            assert got.shape == (batch, 4)
            assert _close(got, model(x))
    summary = backend.summary()
    assert len(backend.runners) == 3  # one compile per distinct batch size
    [cache] = summary.shape_caches
    assert len(cache.shapes) == 3
    for key, batch in zip(cache.shapes, (2, 3, 5)):
        assert ((batch, 8), "float32") in key  # the input's (shape, dtype)
    assert cache.hits == 2
    assert "compiled for 3 shape(s), 2 call(s) reused one" in str(summary)
    assert summary.all_on_chip


def test_a_changed_batch_size_recompiles_for_the_new_shape():
    """dynamo compiles the first shape statically, then marks the batch dim dynamic and
    tries that newer graph first for every call: each new shape is compiled once; the
    first shape, captured again by the dynamic graph, reuses its program."""
    torch._dynamo.reset()
    model = _mlp()
    backend = chipforge.torch_backend(chip="forge-i1")
    compiled = torch.compile(model, backend=backend)
    with torch.no_grad():
        for batch in (2, 4, 2, 4, 6):
            x = torch.randn(batch, 8)
            assert _close(compiled(x), model(x))
    assert len(backend.runners) == 3  # one program per batch size: 2, 4 and 6
    assert [r.graph.tensors[r.graph.inputs[0]].shape[0] for r in backend.runners if
            len(r.graph.inputs) == 1] == [2, 4, 6]
    [cache] = backend.summary().shape_caches
    assert len(cache.shapes) == 3 and cache.hits == 1  # 4, 2, 6 in the dynamic graph
    assert [len(r.results) for r in backend.runners] == [2, 2, 1]


def test_training_with_dynamic_shapes_matches_pytorch():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = NormMLP().train()
    backend = chipforge.torch_backend(chip="forge-t1")
    compiled = torch.compile(model, backend=backend, dynamic=True)
    for batch in (3, 5, 3):
        x, weights = torch.randn(batch, 16), torch.randn(batch, 16)
        loss = (compiled(x) * weights).mean()
        loss.backward()
        got = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        want = (model(x) * weights).mean()
        want.backward()
        assert abs(loss.item() - want.item()) <= 0.02 * abs(want.item())
        for g, w in zip(got, (p.grad for p in model.parameters())):
            assert _close(g, w, 5e-2)
        model.zero_grad()
    [cache] = backend.summary().shape_caches
    assert len(cache.shapes) == 2 and cache.hits == 1
    # a forward and a backward graph per shape
    assert sorted(r.graph.name for r in backend.runners) == ["backward"] * 2 + ["forward"] * 2


def test_a_shape_that_cannot_compile_is_a_clean_error():
    """A dynamic graph called with an input the chip cannot take fails with a CompileError
    at that call, recorded in the summary."""
    torch._dynamo.reset()
    backend = chipforge.torch_backend(chip="forge-i1")
    compiled = torch.compile(lambda x: x * 2.0 + 1.0, backend=backend, dynamic=True)
    with torch.no_grad():
        assert _close(compiled(torch.ones(3, 4)), torch.full((3, 4), 3.0))
        with pytest.raises(CompileError, match="float64"):
            compiled(torch.ones(5, 4, dtype=torch.float64))
    assert len(backend.summary().failures) == 1


# ---- a permute the lowering has no single copy for ------------------------------------------


@pytest.mark.parametrize("dims", [(0, 3, 1, 2), (3, 0, 2, 1), (2, 0, 1)])
def test_a_permute_moving_the_last_dim_far_runs_as_two(dims):
    """Attention's backward permutes [B, H, T, D] so; capture_fx splits such a permute into
    two the lowering has, and the result is PyTorch's."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from chipforge.compiler import ChipRunner, capture_fx

    x = torch.randn(*(2, 3, 4, 5)[:len(dims)])
    gm = make_fx(lambda v: ((v * 2.0).permute(*dims) + 1.0,))(x)
    graph, _ = capture_fx(gm, (x,), name="t")
    permutes = [n.attr("dims") for n in graph.nodes if n.op == "permute"]
    assert len(permutes) == 2
    assert all(p[-1] == len(dims) - 1 or p[-2] == len(dims) - 1 for p in permutes)
    [got] = ChipRunner(graph, "forge-i1", "fp32")(x)
    assert torch.allclose(got, (x * 2.0).permute(*dims) + 1.0, atol=1e-6)


# ---- convolution, batch norm and embedding bags with computed weights (training) ------------


def _grads(module, x, weights) -> list:
    """The gradients of ``(module(x) * weights).sum()`` for x and the parameters."""
    (module(x) * weights).sum().backward()
    grads = [x.grad.clone()] + [p.grad.clone() for p in module.parameters()]
    x.grad = None
    module.zero_grad()
    return grads


CONVS = {"patches": dict(in_channels=3, out_channels=8, kernel_size=4, stride=4),
         "strided_padded": dict(in_channels=3, out_channels=5, kernel_size=3, stride=2,
                                padding=1),
         "groups": dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2),
         "depthwise": dict(in_channels=6, out_channels=6, kernel_size=3, padding=1, groups=6)}


@pytest.mark.parametrize("name", sorted(CONVS))
def test_convolution_trains_on_the_chip(name):
    """A convolution whose weights are graph inputs: its output and the gradients of its
    input, weight and bias against PyTorch's."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(**CONVS[name])
    x = torch.randn(2, conv.in_channels, 8, 8, requires_grad=True)
    backend = chipforge.torch_backend(chip="forge-t1", strict=True)
    compiled = torch.compile(conv, backend=backend, dynamic=False)
    weights = torch.randn_like(conv(x))
    got = compiled(x)
    assert _close(got.detach(), conv(x).detach())
    for g, w in zip(_grads(compiled, x, weights), _grads(conv, x, weights)):
        assert _close(g, w, 3e-2)
    assert backend.summary().all_on_chip


def test_batch_norm_trains_on_the_chip():
    """A conv (no bias: batch norm cancels it) and BatchNorm2d in training mode, two steps:
    the parameters' gradients and the running statistics (updated on the chip) against
    PyTorch's."""
    import copy

    torch._dynamo.reset()
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1, bias=False),
                                    torch.nn.BatchNorm2d(3)).train()
    model = copy.deepcopy(reference)
    backend = chipforge.torch_backend(chip="forge-t1", strict=True)
    compiled = torch.compile(model, backend=backend, dynamic=False)
    for _ in range(2):
        x, weights = torch.randn(2, 2, 4, 4) * 2 + 1, torch.randn(2, 3, 4, 4)
        (compiled(x) * weights).sum().backward()
        (reference(x) * weights).sum().backward()
    for got, want in zip(model.parameters(), reference.parameters()):
        assert _close(got.grad, want.grad, 3e-2)
    norm, ref_norm = model[1], reference[1]
    assert _close(norm.running_mean, ref_norm.running_mean)
    assert _close(norm.running_var, ref_norm.running_var)
    assert norm.num_batches_tracked.item() == 2
    assert backend.summary().all_on_chip


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_trains_on_the_chip(mode):
    """nn.EmbeddingBag with offsets, per-sample weights (sum) and a padding index: the
    table's gradient against PyTorch's."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(10, 4, mode=mode, padding_idx=3)
    indices = torch.tensor([1, 3, 2, 2, 9, 0, 3, 5])
    offsets = torch.tensor([0, 3, 3, 6])  # bag 1 is empty
    extra = {"per_sample_weights": torch.rand(8)} if mode == "sum" else {}
    backend = chipforge.torch_backend(chip="forge-t1", strict=True)
    compiled = torch.compile(bag, backend=backend, dynamic=False)
    weights = torch.randn(4, 4)
    got = compiled(indices, offsets, **extra)
    (got * weights).sum().backward()
    got_grad = bag.weight.grad.clone()
    bag.zero_grad()
    want = bag(indices, offsets, **extra)
    (want * weights).sum().backward()
    assert _close(got.detach(), want.detach())
    assert _close(got_grad, bag.weight.grad)
    assert backend.summary().all_on_chip


_IDS = {"input_ids": (2, 8)}
EVAL_MODELS = {
    "vit": ("ViTModel", "ViTConfig", dict(image_size=16, patch_size=8, hidden_size=32,
                                          num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=64), {"pixel_values": None}),
    "resnet": ("ResNetModel", "ResNetConfig", dict(embedding_size=8, hidden_sizes=[8, 16],
                                                   depths=[1, 1], layer_type="basic"),
               {"pixel_values": None}),
    "convnext": ("ConvNextModel", "ConvNextConfig", dict(hidden_sizes=[8, 16], depths=[1, 1],
                                                         num_stages=2, patch_size=2,
                                                         image_size=16), {"pixel_values": None}),
    "bert": ("BertModel", "BertConfig", dict(vocab_size=64, hidden_size=32,
                                             intermediate_size=64, num_hidden_layers=1,
                                             num_attention_heads=2), _IDS),
    "t5": ("T5Model", "T5Config", dict(vocab_size=64, d_model=32, d_kv=16, d_ff=64,
                                       num_layers=1, num_heads=2, decoder_start_token_id=0),
           {**_IDS, "decoder_input_ids": (2, 8)}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EVAL_MODELS))
def test_eval_model_without_no_grad(name):
    """Models in eval mode, called with gradients on: ViT (layer norm statistics, patch
    convolution), ResNet (batch norm), ConvNeXt (depthwise convolution), BERT (exact GELU)
    and T5 (encoder-decoder). The training path's forward gives PyTorch's outputs, which
    can be differentiated."""
    transformers = pytest.importorskip("transformers")
    model_cls, config_cls, config, inputs = EVAL_MODELS[name]
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = getattr(transformers, model_cls)(getattr(transformers, config_cls)(**config)).eval()
    kwargs = {key: torch.randn(2, 3, 16, 16) if shape is None else torch.randint(0, 64, shape)
              for key, shape in inputs.items()}
    backend = chipforge.torch_backend(chip="forge-i1", strict=True)
    got = torch.compile(model, backend=backend)(**kwargs).last_hidden_state
    want = model(**kwargs).last_hidden_state
    assert got.requires_grad
    assert _close(got.detach(), want.detach())
    assert [name for name, _, _ in backend.summary().graphs] == ["forward"]
