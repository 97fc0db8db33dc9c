"""A workload graph: ops with repeat counts, plus what one execution produces."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from chipforge.ops._ir import Op


@dataclass(frozen=True)
class Graph:
    """An ordered list of ``(op, count)``. ``items`` is the tokens or samples one run yields.

    Repeat counts keep an 80-layer model small: identical ops appear once with a count.
    """

    name: str
    nodes: tuple[tuple[Op, int], ...]
    items: float = 1.0
    item_unit: str = "samples"  # "tokens" or "samples"
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __iter__(self) -> Iterator[tuple[Op, int]]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def flops(self) -> float:
        return sum(op.flops * n for op, n in self.nodes)

    @property
    def bytes(self) -> float:
        return sum(op.bytes * n for op, n in self.nodes)


class GraphBuilder:
    """Collects ops in order, merging consecutive repeats, then freezes into a :class:`Graph`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._nodes: list[list] = []

    def add(self, op: Op, count: int = 1) -> GraphBuilder:
        if count <= 0:
            return self
        self._nodes.append([op, count])
        return self

    def extend(self, graph: Graph, times: int = 1) -> GraphBuilder:
        for op, n in graph.nodes:
            self.add(op, n * times)
        return self

    def build(self, items: float = 1.0, item_unit: str = "samples", **meta) -> Graph:
        return Graph(self.name, tuple((op, n) for op, n in self._nodes), items, item_unit,
                     dict(meta))
