"""Recommendation models as a platform writes them: DLRM, a two-tower retriever and DIN.

Sparse features come the way the papers' reference code feeds them: EmbeddingBag tables
read flat int64 ``indices`` with per-sample ``offsets`` (bag ``b`` of table ``t`` is
``indices[t, offsets[t, b]:offsets[t, b + 1]]``, the last bag runs to the end; an empty
bag pools to zeros), DIN's behaviour history is a padded ``[batch, length]`` id matrix
whose padding id 0 is masked out. Every ``example_inputs(batch, seed)`` is seeded, so the
same call gives the same tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _mlp(sizes: list[int], *, last_activation: bool) -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ...`` with ReLU between (and after the last
    one when ``last_activation``)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _bags(generator: torch.Generator, rows: int, batch: int, total: int) -> tuple[Tensor, Tensor]:
    """``total`` random ids below ``rows`` and ``batch`` sorted offsets starting at 0 (so bag
    sizes vary, empty bags included)."""
    indices = torch.randint(0, rows, (total,), generator=generator)
    cuts = torch.randint(0, total + 1, (batch - 1,), generator=generator).sort().values
    return indices, torch.cat([torch.zeros(1, dtype=torch.int64), cuts])


class DLRM(nn.Module):
    """Deep Learning Recommendation Model (Naumov et al., 2019, arXiv:1906.00091; the
    structure of facebookresearch/dlrm ``dlrm_s_pytorch.py``).

    ``forward(dense, indices, offsets)``: ``dense`` is ``[B, num_dense]`` float32,
    ``indices`` ``[T, N]`` int64 and ``offsets`` ``[T, B]`` int64 for the ``T`` sparse
    tables. The bottom MLP maps the dense features to ``[B, dim]``; each table pools its
    bag by sum (``nn.EmbeddingBag(mode="sum")``) to ``[B, dim]``; the interaction is the
    dot product of every pair of the ``T + 1`` vectors (``Z = X X^T``, strictly lower
    triangle, ``T (T + 1) / 2`` values), concatenated with the bottom MLP's output; the
    top MLP gives one logit ``[B, 1]`` (apply a sigmoid for the click probability).
    """

    def __init__(self, num_dense: int = 8, table_rows: tuple[int, ...] = (100, 60, 40),
                 dim: int = 16, bottom: tuple[int, ...] = (32,), top: tuple[int, ...] = (32, 16),
                 bag_size: int = 3) -> None:
        super().__init__()
        self.num_dense, self.table_rows, self.bag_size = num_dense, table_rows, bag_size
        self.bottom = _mlp([num_dense, *bottom, dim], last_activation=True)
        self.tables = nn.ModuleList(nn.EmbeddingBag(rows, dim, mode="sum") for rows in table_rows)
        n = len(table_rows) + 1
        self.top = _mlp([dim + n * (n - 1) // 2, *top, 1], last_activation=False)
        rows, cols = torch.tril_indices(n, n, offset=-1)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)

    def forward(self, dense: Tensor, indices: Tensor, offsets: Tensor) -> Tensor:
        x = self.bottom(dense)
        pooled = [table(indices[t], offsets[t]) for t, table in enumerate(self.tables)]
        features = torch.stack([x, *pooled], dim=1)  # [B, T + 1, dim]
        z = torch.bmm(features, features.transpose(1, 2))
        pairs = z[:, self.pair_rows, self.pair_cols]  # [B, T (T + 1) / 2]
        return self.top(torch.cat([x, pairs], dim=1))

    def example_inputs(self, batch: int = 4, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """``(dense, indices, offsets)``: standard-normal dense features and
        ``batch * bag_size`` ids per table in bags of random size."""
        g = torch.Generator().manual_seed(seed)
        dense = torch.randn(batch, self.num_dense, generator=g)
        bags = [_bags(g, rows, batch, batch * self.bag_size) for rows in self.table_rows]
        return dense, torch.stack([i for i, _ in bags]), torch.stack([o for _, o in bags])


class TwoTower(nn.Module):
    """Two-tower retrieval (Yi et al., 2019, "Sampling-bias-corrected neural modeling for
    large corpus item recommendations", RecSys; Covington et al., 2016).

    ``forward(user_ids, history, history_offsets, user_dense, item_ids, item_dense)``: the
    user tower concatenates the user's id embedding, the mean of the embeddings of the
    items in their history (``nn.EmbeddingBag(mode="mean")`` over ``history`` [N] with
    ``history_offsets`` [B]; an empty history pools to zeros) and ``user_dense``; the item
    tower the item's id embedding and ``item_dense``. Each tower is an MLP whose output is
    L2-normalized; the score ``[B]`` is their dot product divided by ``temperature``.
    """

    def __init__(self, num_users: int = 50, num_items: int = 80, dim: int = 16,
                 user_dense: int = 4, item_dense: int = 6, hidden: int = 32,
                 out: int = 16, temperature: float = 0.05, history_size: int = 4) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.user_dense, self.item_dense, self.history_size = user_dense, item_dense, history_size
        self.temperature = temperature
        self.user_embedding = nn.Embedding(num_users, dim)
        self.history_embedding = nn.EmbeddingBag(num_items, dim, mode="mean")
        self.item_embedding = nn.Embedding(num_items, dim)
        self.user_tower = _mlp([2 * dim + user_dense, hidden, out], last_activation=False)
        self.item_tower = _mlp([dim + item_dense, hidden, out], last_activation=False)

    def forward(self, user_ids: Tensor, history: Tensor, history_offsets: Tensor,
                user_dense: Tensor, item_ids: Tensor, item_dense: Tensor) -> Tensor:
        user = torch.cat([self.user_embedding(user_ids),
                          self.history_embedding(history, history_offsets), user_dense], dim=1)
        item = torch.cat([self.item_embedding(item_ids), item_dense], dim=1)
        u = nn.functional.normalize(self.user_tower(user), dim=-1)
        v = nn.functional.normalize(self.item_tower(item), dim=-1)
        return (u * v).sum(dim=-1) / self.temperature

    def example_inputs(self, batch: int = 4, seed: int = 0) -> tuple[Tensor, ...]:
        """``(user_ids, history, history_offsets, user_dense, item_ids, item_dense)`` with
        ``batch * history_size`` history ids in bags of random size."""
        g = torch.Generator().manual_seed(seed)
        user_ids = torch.randint(0, self.num_users, (batch,), generator=g)
        history, offsets = _bags(g, self.num_items, batch, batch * self.history_size)
        item_ids = torch.randint(0, self.num_items, (batch,), generator=g)
        return (user_ids, history, offsets, torch.randn(batch, self.user_dense, generator=g),
                item_ids, torch.randn(batch, self.item_dense, generator=g))


class Dice(nn.Module):
    """DIN's data-adaptive activation: ``p = sigmoid(batchnorm(s))``,
    ``dice(s) = p * s + (1 - p) * alpha * s`` over the last dimension (Zhou et al., 2018,
    eq. 9; batch norm without affine parameters, its running statistics in eval)."""

    def __init__(self, features: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(features, eps=eps, affine=False)
        self.alpha = nn.Parameter(torch.zeros(features))

    def forward(self, s: Tensor) -> Tensor:
        p = torch.sigmoid(self.norm(s.reshape(-1, s.shape[-1])).reshape(s.shape))
        return p * s + (1 - p) * self.alpha * s


class DIN(nn.Module):
    """Deep Interest Network (Zhou et al., 2018, arXiv:1706.06978, KDD).

    ``forward(history, candidate, user_dense)``: ``history`` ``[B, L]`` int64 item ids of
    the user's behaviours, padded with id 0 (item ids start at 1); ``candidate`` ``[B]``
    the candidate item; ``user_dense`` ``[B, user_dense]`` profile features. The local
    activation unit scores each behaviour ``h`` against the candidate ``c`` with an MLP
    (Dice activation) over ``[h, c, h - c, h * c]``; the scores are masked where the
    history is padding (``history != 0``) and, as in the paper, not softmax-normalized: the
    user's interest is ``sum_l score_l * h_l``. The output MLP (Dice) over
    ``[interest, c, user_dense]`` gives one logit ``[B, 1]``.
    """

    def __init__(self, num_items: int = 60, dim: int = 16, user_dense: int = 4,
                 attention: int = 32, hidden: tuple[int, ...] = (32, 16),
                 history_length: int = 6) -> None:
        super().__init__()
        self.num_items, self.user_dense, self.history_length = num_items, user_dense, history_length
        self.item_embedding = nn.Embedding(num_items, dim, padding_idx=0)
        self.attention = nn.Sequential(nn.Linear(4 * dim, attention), Dice(attention),
                                       nn.Linear(attention, 1))
        layers: list[nn.Module] = []
        sizes = [2 * dim + user_dense, *hidden]
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), Dice(n_out)]
        self.head = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, history: Tensor, candidate: Tensor, user_dense: Tensor) -> Tensor:
        h = self.item_embedding(history)  # [B, L, dim]
        c = self.item_embedding(candidate).unsqueeze(1).expand_as(h)
        scores = self.attention(torch.cat([h, c, h - c, h * c], dim=-1))  # [B, L, 1]
        scores = scores * (history != 0).unsqueeze(-1).to(scores.dtype)
        interest = (scores * h).sum(dim=1)
        return self.head(torch.cat([interest, c[:, 0], user_dense], dim=-1))

    def example_inputs(self, batch: int = 4, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """``(history, candidate, user_dense)``: histories of random length 0..L padded
        with 0 at the end, candidates in 1..num_items-1."""
        g = torch.Generator().manual_seed(seed)
        length = self.history_length
        history = torch.randint(1, self.num_items, (batch, length), generator=g)
        lengths = torch.randint(0, length + 1, (batch, 1), generator=g)
        history = history * (torch.arange(length) < lengths)
        candidate = torch.randint(1, self.num_items, (batch,), generator=g)
        return history, candidate, torch.randn(batch, self.user_dense, generator=g)
