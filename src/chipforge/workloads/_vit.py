"""Vision Transformer (Dosovitskiy et al. 2020, arXiv:2010.11929) as torchvision builds it.

ViT-B/16: 16x16 patch-embedding conv, a class token, learned position embeddings, 12
pre-norm encoder layers (LayerNorm, non-causal attention, GELU MLP), final LayerNorm over
all tokens, linear head on the class token (torchvision ``vision_transformer.py``).
"""

from __future__ import annotations

from chipforge import ops
from chipforge.errors import WorkloadError
from chipforge.ops import Graph
from chipforge.workloads._common import check_dtype, divides, pos_int
from chipforge.workloads._vision import _finish, _Net


def vit(batch: int, image: int = 224, patch: int = 16, layers: int = 12, hidden: int = 768,
        heads: int = 12, mlp: int = 3072, classes: int = 1000, dtype: str = "bf16",
        train: bool = False, name: str = "vit") -> Graph:
    """A ViT on ``batch`` images of ``image``² pixels (AdamW when training)."""
    where = name
    for field, value in (("batch", batch), ("image", image), ("patch", patch),
                         ("layers", layers), ("hidden", hidden), ("heads", heads),
                         ("mlp", mlp), ("classes", classes)):
        pos_int(where, field, value)
    check_dtype(where, dtype)
    if image % patch:
        raise WorkloadError(f"{where}: image={image} is not a multiple of patch={patch}; "
                            "expected a whole number of patches")
    head_dim = divides(where, "hidden", hidden, "heads", heads)
    seq = (image // patch) ** 2 + 1  # patches + class token
    tokens = batch * seq
    net = _Net(batch, dtype, train)
    net.nodes += [
        (ops.conv2d(batch, 3, hidden, image, image, patch, patch, dtype=dtype,
                    name="patch_embed"), 1),
        (ops.elementwise(tokens * hidden, "add", 2, 1, dtype, name="pos_embed"), 1)]
    block = [
        ops.layernorm(tokens, hidden, dtype, name="ln_1"),
        ops.matmul(tokens, 3 * hidden, hidden, dtype, name="qkv_proj"),
        ops.attention(batch, seq, seq, heads, heads, head_dim, dtype, causal=False,
                      name="attention"),
        ops.matmul(tokens, hidden, hidden, dtype, name="out_proj"),
        ops.elementwise(tokens * hidden, "residual_add", 2, 1, dtype, name="residual"),
        ops.layernorm(tokens, hidden, dtype, name="ln_2"),
        ops.matmul(tokens, mlp, hidden, dtype, name="mlp_fc1"),
        ops.elementwise(tokens * mlp, "gelu", 1, 1, dtype, name="gelu"),
        ops.matmul(tokens, hidden, mlp, dtype, name="mlp_fc2"),
        ops.elementwise(tokens * hidden, "residual_add", 2, 1, dtype, name="residual")]
    net.nodes += [(op, layers) for op in block]
    net.nodes += [(ops.layernorm(tokens, hidden, dtype, name="ln"), 1),
                  (ops.matmul(batch, classes, hidden, dtype, name="head"), 1)]
    per_layer = (4 * hidden * hidden + 4 * hidden  # qkv + out projections with biases
                 + 2 * hidden * mlp + mlp + hidden  # MLP with biases
                 + 4 * hidden)  # two LayerNorms
    net.params = (3 * patch * patch * hidden + hidden  # patch conv with bias
                  + hidden + seq * hidden  # class token, position embeddings
                  + layers * per_layer + 2 * hidden + hidden * classes + classes)
    return _finish(net, f"{name} {'train' if train else 'inference'} b{batch}", classes,
                   "adamw", image=image)


def vit_b16(batch: int, image: int = 224, dtype: str = "bf16", train: bool = False) -> Graph:
    """ViT-B/16: 12 layers, hidden 768, 12 heads, MLP 3072 (torchvision ``vit_b_16``)."""
    return vit(batch, image, 16, 12, 768, 12, 3072, 1000, dtype, train, name="vit_b16")
