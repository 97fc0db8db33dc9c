"""The compiler's model zoo: small PyTorch models the simulator runs in seconds.

Each factory returns ``(module.eval(), example_inputs)`` with deterministic weights; each
has a ``*_inputs(n, seed)`` companion giving ``n`` more input tuples of the same kind (for
post-training-quantization calibration). ``FACTORIES`` maps names to factories and
``calibration_inputs(name, n)`` dispatches. Import torch lazily: this module needs it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- MLP ---------------------------------------------------------------------------------


def mlp_inputs(n: int = 1, seed: int = 1) -> list[tuple[torch.Tensor]]:
    g = _gen(seed)
    return [(torch.randn(8, 64, generator=g),) for _ in range(n)]


def mlp():
    """3 Linear layers with ReLU: [8, 64] -> 128 -> 128 -> 10 classes."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    return model.eval(), mlp_inputs(1, seed=100)[0]


# ---- small CNN ---------------------------------------------------------------------------


def _bn(channels: int) -> nn.BatchNorm2d:
    """BatchNorm in eval mode with non-trivial affine parameters and running stats."""
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return bn


def small_cnn_inputs(n: int = 1, seed: int = 2) -> list[tuple[torch.Tensor]]:
    g = _gen(seed)
    return [(torch.randn(4, 3, 16, 16, generator=g),) for _ in range(n)]


def small_cnn():
    """conv3x3-BN-ReLU-maxpool, conv3x3-BN-ReLU, global average pool, Linear(32 -> 10)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), _bn(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), _bn(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    return model.eval(), small_cnn_inputs(1, seed=101)[0]


# ---- GPT decoder (prefill and one decode step) -------------------------------------------

VOCAB, D_MODEL, HEADS, KV_HEADS, HEAD_DIM, HIDDEN, LAYERS, CONTEXT = 128, 64, 4, 2, 16, 128, 2, 16


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rope(x, cos, sin):
    return x * cos + _rotate_half(x) * sin


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn_norm = RMSNorm(D_MODEL)
        self.wq = nn.Linear(D_MODEL, HEADS * HEAD_DIM, bias=False)
        self.wk = nn.Linear(D_MODEL, KV_HEADS * HEAD_DIM, bias=False)
        self.wv = nn.Linear(D_MODEL, KV_HEADS * HEAD_DIM, bias=False)
        self.wo = nn.Linear(HEADS * HEAD_DIM, D_MODEL, bias=False)
        self.mlp_norm = RMSNorm(D_MODEL)
        self.w_gate = nn.Linear(D_MODEL, HIDDEN, bias=False)
        self.w_up = nn.Linear(D_MODEL, HIDDEN, bias=False)
        self.w_down = nn.Linear(HIDDEN, D_MODEL, bias=False)

    def qkv(self, x, cos, sin):
        """Q [B, H, S, hd], K and V [B, KV, S, hd] for x [B, S, D]; RoPE applied to Q, K."""
        b, s, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(b, s, HEADS, HEAD_DIM).transpose(1, 2)
        k = self.wk(h).view(b, s, KV_HEADS, HEAD_DIM).transpose(1, 2)
        v = self.wv(h).view(b, s, KV_HEADS, HEAD_DIM).transpose(1, 2)
        return _rope(q, cos, sin), _rope(k, cos, sin), v

    def finish(self, x, q, k, v, mask):
        """Attention of q over keys k, v [B, KV, T, hd] with an additive mask, then the MLP."""
        b, _, s, _ = q.shape
        t, rep = k.shape[2], HEADS // KV_HEADS
        k = k[:, :, None].expand(b, KV_HEADS, rep, t, HEAD_DIM).reshape(b, HEADS, t, HEAD_DIM)
        v = v[:, :, None].expand(b, KV_HEADS, rep, t, HEAD_DIM).reshape(b, HEADS, t, HEAD_DIM)
        scores = q @ k.transpose(-2, -1) / math.sqrt(HEAD_DIM) + mask
        out = torch.softmax(scores, dim=-1) @ v
        x = x + self.wo(out.transpose(1, 2).reshape(b, s, HEADS * HEAD_DIM))
        h = self.mlp_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class GPT(nn.Module):
    """GPT-style decoder: RMSNorm, RoPE (rotate-half), GQA, SwiGLU, untied LM head."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.norm = RMSNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, VOCAB, bias=False)
        inv_freq = 1.0 / 10000 ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM)
        angles = torch.outer(torch.arange(CONTEXT).float(), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)  # [CONTEXT, HEAD_DIM]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        causal = torch.full((CONTEXT, CONTEXT), float("-inf")).triu(1)
        self.register_buffer("causal", causal, persistent=False)
        # decode step at position p: cache slots j < p are valid, the new token (last) too
        valid = torch.arange(CONTEXT)[None, :] < torch.arange(CONTEXT)[:, None]
        step = torch.zeros(CONTEXT, CONTEXT + 1).masked_fill(
            torch.cat((~valid, torch.zeros(CONTEXT, 1, dtype=torch.bool)), 1), float("-inf"))
        self.register_buffer("step_mask", step, persistent=False)

    def forward(self, tokens):
        logits, _, _ = self.prefill(tokens)
        return logits

    def prefill(self, tokens):
        """Logits [B, S, V] and the K, V caches [L, B, KV, S, hd] of a whole sequence."""
        s = tokens.shape[1]
        cos, sin, mask = self.cos[:s], self.sin[:s], self.causal[:s, :s]
        x = self.embed(tokens)
        ks, vs = [], []
        for block in self.blocks:
            q, k, v = block.qkv(x, cos, sin)
            x = block.finish(x, q, k, v, mask)
            ks.append(k)
            vs.append(v)
        return self.head(self.norm(x)), torch.stack(ks), torch.stack(vs)

    def step(self, token, k_cache, v_cache, positions):
        """One decode step: token [B, 1] at ``positions`` [B] over the caches [L, B, KV, T,
        hd] (slots >= position are ignored) -> logits [B, 1, V] and the step's new K, V
        [L, B, KV, 1, hd]."""
        b = token.shape[0]
        cos = F.embedding(positions, self.cos).view(b, 1, 1, HEAD_DIM)
        sin = F.embedding(positions, self.sin).view(b, 1, 1, HEAD_DIM)
        mask = F.embedding(positions, self.step_mask).view(b, 1, 1, CONTEXT + 1)
        x = self.embed(token)
        ks, vs = [], []
        for i, block in enumerate(self.blocks):
            q, k, v = block.qkv(x, cos, sin)
            x = block.finish(x, q, torch.cat((k_cache[i], k), 2), torch.cat((v_cache[i], v), 2),
                             mask)
            ks.append(k)
            vs.append(v)
        return self.head(self.norm(x)), torch.stack(ks), torch.stack(vs)


class GPTDecodeStep(nn.Module):
    """The decode step of a :class:`GPT` as its own module (shares the GPT's weights)."""

    def __init__(self, gpt: GPT):
        super().__init__()
        self.gpt = gpt

    def forward(self, token, k_cache, v_cache, positions):
        return self.gpt.step(token, k_cache, v_cache, positions)


def gpt_decoder_inputs(n: int = 1, seed: int = 3) -> list[tuple[torch.Tensor]]:
    g = _gen(seed)
    return [(torch.randint(0, VOCAB, (2, CONTEXT), generator=g),) for _ in range(n)]


def _gpt() -> GPT:
    torch.manual_seed(0)
    gpt = GPT()
    with torch.no_grad():  # a larger init than the default so attention is not uniform
        for block in gpt.blocks:
            for lin in (block.wq, block.wk):
                lin.weight.mul_(3.0)
    return gpt.eval()


def gpt_decoder():
    """2-layer GPT prefill: tokens int64 [2, 16] -> logits [2, 16, 128]."""
    return _gpt(), gpt_decoder_inputs(1, seed=102)[0]


def gpt_decode_step_inputs(n: int = 1, seed: int = 4):
    g = _gen(seed)
    cache = (LAYERS, 2, KV_HEADS, CONTEXT, HEAD_DIM)
    return [(torch.randint(0, VOCAB, (2, 1), generator=g), torch.randn(cache, generator=g),
             torch.randn(cache, generator=g), torch.randint(0, CONTEXT, (2,), generator=g))
            for _ in range(n)]


def gpt_decode_step():
    """The GPT's decode step: (token [2, 1], k_cache, v_cache [2, 2, 2, 16, 16], positions
    [2]) -> (logits [2, 1, 128], new K [2, 2, 2, 1, 16], new V)."""
    return GPTDecodeStep(_gpt()).eval(), gpt_decode_step_inputs(1, seed=103)[0]


# ---- DLRM --------------------------------------------------------------------------------

TABLES, ROWS, EMB_DIM, DENSE = 4, 100, 16, 13


def _mlp_layers(sizes, last_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (k, n) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(k, n))
        if last_relu or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    """Bottom MLP 13-64-16, 4 tables of 100 x 16, dot interaction, top MLP 26-32-1, sigmoid."""

    def __init__(self):
        super().__init__()
        feats = TABLES + 1
        self.bottom = _mlp_layers((DENSE, 64, EMB_DIM), last_relu=True)
        self.tables = nn.ModuleList(nn.Embedding(ROWS, EMB_DIM) for _ in range(TABLES))
        pairs = feats * (feats - 1) // 2
        self.top = _mlp_layers((EMB_DIM + pairs, 32, 1), last_relu=False)
        rows, cols = torch.triu_indices(feats, feats, offset=1)
        self.register_buffer("triu", rows * feats + cols, persistent=False)

    def forward(self, dense, indices):
        b = dense.shape[0]
        x = self.bottom(dense)
        feats = torch.stack([x] + [t(indices[:, i]) for i, t in enumerate(self.tables)], 1)
        z = torch.bmm(feats, feats.transpose(1, 2))  # [B, 5, 5]
        pairs = z.reshape(b, -1)[:, self.triu]  # strict upper triangle, [B, 10]
        return torch.sigmoid(self.top(torch.cat((x, pairs), 1)))


def dlrm_inputs(n: int = 1, seed: int = 5):
    g = _gen(seed)
    return [(torch.randn(8, DENSE, generator=g), torch.randint(0, ROWS, (8, TABLES), generator=g))
            for _ in range(n)]


def dlrm():
    """DLRM: dense [8, 13] float, indices int64 [8, 4] -> probability [8, 1]."""
    torch.manual_seed(0)
    return DLRM().eval(), dlrm_inputs(1, seed=104)[0]


FACTORIES = {"mlp": mlp, "small_cnn": small_cnn, "gpt_decoder": gpt_decoder,
             "gpt_decode_step": gpt_decode_step, "dlrm": dlrm}
INPUTS = {"mlp": mlp_inputs, "small_cnn": small_cnn_inputs, "gpt_decoder": gpt_decoder_inputs,
          "gpt_decode_step": gpt_decode_step_inputs, "dlrm": dlrm_inputs}


def calibration_inputs(name: str, n: int, seed: int = 0) -> list[tuple]:
    """``n`` random input tuples for the zoo model ``name``, like its example inputs."""
    return INPUTS[name](n, seed=1000 + seed)


# ---- training wrappers (forward returns the scalar loss) ----------------------------------


class TrainLoss(nn.Module):
    """``model(*inputs)`` scored against one-hot targets: the mean over positions of the
    cross-entropy ``-(targets_onehot * log_softmax(logits, -1)).sum(-1)`` (one-hot targets
    keep nll_loss's gather/scatter out of the graphs), or of the squared error with
    ``loss="mse"``."""

    def __init__(self, model: nn.Module, loss: str = "ce"):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, *args):
        *inputs, targets = args
        out = self.model(*inputs)
        if self.loss == "mse":
            return ((out - targets) ** 2).mean()
        return -(targets * F.log_softmax(out, -1)).sum(-1).mean()


def gpt_train_inputs(n: int = 1, seed: int = 6):
    g = _gen(seed)
    out = []
    for _ in range(n):
        tokens = torch.randint(0, VOCAB, (2, CONTEXT), generator=g)
        targets = torch.randint(0, VOCAB, (2, CONTEXT), generator=g)
        out.append((tokens, F.one_hot(targets, VOCAB).float()))
    return out


def gpt_train():
    """The GPT prefill scored by cross-entropy: (tokens int64 [2, 16], one-hot targets float
    [2, 16, 128]) -> the scalar mean loss. In train mode, with grad-requiring parameters."""
    return TrainLoss(_gpt()).train(), gpt_train_inputs(1, seed=105)[0]


def mlp_train_inputs(n: int = 1, seed: int = 7):
    g = _gen(seed)
    return [(torch.randn(8, 64, generator=g),
             F.one_hot(torch.randint(0, 10, (8,), generator=g), 10).float()) for _ in range(n)]


def mlp_train():
    """The MLP scored by cross-entropy: (x [8, 64], one-hot targets [8, 10]) -> scalar loss."""
    model, _ = mlp()
    return TrainLoss(model).train(), mlp_train_inputs(1, seed=106)[0]


TRAIN_FACTORIES = {"mlp_train": mlp_train, "gpt_train": gpt_train}
