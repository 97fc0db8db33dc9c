"""ResNet-50 and ViT-B/16 against torchvision's published MACs and parameter counts."""

from __future__ import annotations

import pytest

from chipforge.errors import WorkloadError
from chipforge.ops import OpKind
from chipforge.workloads import resnet50, vit, vit_b16


def macs(graph) -> float:
    """Multiply-accumulates in GEMM-class ops (what torchvision's "GFLOPS" column counts)."""
    total = 0.0
    for op, n in graph:
        if op.kind is OpKind.ATTENTION:
            total += op.matmul_flops / 2 * n
        elif op.kind in (OpKind.MATMUL, OpKind.CONV2D):
            total += op.flops / 2 * n
    return total


def test_resnet50_macs_and_params() -> None:
    g = resnet50(batch=4)
    # torchvision ResNet50_Weights.IMAGENET1K_V1: 4.09 GFLOPS (MACs), 25,557,032 params
    assert macs(g) / 4 == pytest.approx(4.09e9, rel=0.02)
    assert g.flops / 4 == pytest.approx(2 * 4.09e9, rel=0.02)
    assert g.meta["params"] == 25_557_032
    assert g.items == 4 and g.item_unit == "samples"


def test_resnet50_layer_list() -> None:
    g = resnet50(batch=1)
    convs = sum(n for op, n in g if op.kind is OpKind.CONV2D)
    assert convs == 1 + 16 * 3 + 4  # stem, 16 bottlenecks of 3 convs, 4 downsamples
    v15 = [op for op, _ in g if op.name == "layer2.0_conv2"][0]
    assert (v15.kh, v15.stride, v15.h, v15.out_h) == (3, 2, 56, 28)  # v1.5: stride on 3x3
    fc = [op for op, _ in g if op.name == "fc"][0]
    assert (fc.n, fc.k) == (1000, 2048)


def test_vit_b16_macs_and_params() -> None:
    g = vit_b16(batch=2)
    # torchvision ViT_B_16_Weights.IMAGENET1K_V1: 17.56 GFLOPS (MACs), 86,567,656 params
    assert macs(g) / 2 == pytest.approx(17.56e9, rel=0.02)
    assert g.meta["params"] == 86_567_656
    attn = [op for op, _ in g if op.kind is OpKind.ATTENTION][0]
    assert (attn.q_len, attn.kv_len, attn.heads, attn.head_dim, attn.causal) == (
        197, 197, 12, 64, False)
    assert sum(n for op, n in g if op.name == "gelu") == 12


def test_training_graphs_about_three_times_forward() -> None:
    for build in (resnet50, vit_b16):
        fwd, train = build(2), build(2, train=True)
        assert macs(train) == pytest.approx(3 * macs(fwd), rel=0.05)
        assert train.meta["phase"] == "train" and train.items == 2


def test_other_image_sizes() -> None:
    assert macs(vit_b16(1, image=384)) > macs(vit_b16(1))
    assert vit(1, image=32, patch=4, layers=2, hidden=64, heads=4, mlp=128).items == 1
    assert macs(resnet50(1, image=160)) < macs(resnet50(1))


@pytest.mark.parametrize("call, match", [
    (lambda: resnet50(0), r"resnet50: batch=0; expected a positive integer"),
    (lambda: resnet50(1, image=16), r"image=16; expected at least 32"),
    (lambda: vit_b16(1, image=200), r"image=200 is not a multiple of patch=16"),
    (lambda: vit(1, hidden=100, heads=12), r"hidden=100 is not divisible by heads=12"),
    (lambda: vit_b16(1, dtype="float"), r"dtype='float'"),
])
def test_errors(call, match: str) -> None:
    with pytest.raises(WorkloadError, match=match):
        call()
