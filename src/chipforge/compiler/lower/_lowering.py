"""The lowering context every kernel works in: DRAM buffers (:class:`Buf`), the split of
work across cores (:func:`split`) and :class:`Lowering` (placement, constants, barriers).

A KernelGraph becomes a Program one kernel per node (``_compile``). Each kernel reads its
inputs from DRAM and writes its output to DRAM, split across the cores, and ends with a
barrier so the next kernel may read any core's results (like kernel boundaries on a GPU).
Within a kernel, DMA, matrix and vector instructions overlap through double buffering and
semaphore tokens (see ``_emit``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chipforge.arch import ChipSpec
from chipforge.compiler.lower._emit import DTYPE, CoreEmitter, DramAllocator
from chipforge.compiler.lower._kernel_graph import KernelGraph, KernelNode
from chipforge.isa import Dtype
from chipforge.machine import CoreTiming
from chipforge.numerics import FORMATS, NP_DTYPE

FLOAT_DTYPES = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Buf:
    """A tensor in DRAM: byte address, shape and storage dtype."""

    addr: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def isa_dtype(self) -> Dtype:
        return DTYPE[self.dtype]

    @property
    def itemsize(self) -> int:
        return self.isa_dtype.itemsize

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def rows(self) -> int:
        return self.numel // self.cols

    @property
    def cols(self) -> int:
        return self.shape[-1] if self.shape else 1


_BAND = 64  # rows of a transposed matrix cast at once: 64 source columns, 256 bytes a row


def c_bytes(x: np.ndarray, dt: np.dtype) -> bytes:
    """``x.astype(dt)`` as C-order bytes. A large transposed matrix (a folded weight
    transpose) is cast in bands of rows, each reading a narrow column strip of its
    C-ordered source, which stays in cache (GPT-2's 768 x 50257 lm_head to bf16: 0.43 s,
    against 0.61 s for a cast and then a transposing copy)."""
    if x.ndim == 2 and x.size >= 1 << 20 and x.flags.f_contiguous and not x.flags.c_contiguous:
        out = np.empty(x.shape, dt)
        for r in range(0, x.shape[0], _BAND):
            np.copyto(out[r:r + _BAND], x[r:r + _BAND], casting="unsafe")
        return out.tobytes()
    return x.astype(dt).tobytes()


def saturate_finite(x, dtype: str):
    """``x`` (an array or a float) with finite values beyond float ``dtype``'s range clipped to
    its largest finite value; infinities and NaN kept. An fp32 graph stored in bf16 keeps
    its sentinels finite: ``torch.finfo(torch.float32).min``, the masking value of most
    models, would round to -inf in bf16 and turn a fully masked softmax row into NaN, where
    PyTorch gives a uniform row."""
    fmt = FORMATS.get(dtype)
    if fmt is None or not np.size(x):
        return x
    arr = np.asarray(x, np.float32)
    with np.errstate(invalid="ignore"):
        if not (np.nanmax(arr) > fmt.max or np.nanmin(arr) < -fmt.max):
            return x
        clipped = np.where(np.isinf(arr), arr, np.clip(arr, -fmt.max, fmt.max))
    return clipped.astype(np.float32) if np.ndim(x) else float(clipped)


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """``total`` items in ``parts`` near-equal contiguous ranges (empty ones dropped)."""
    base, extra = divmod(total, parts)
    out, start = [], 0
    for i in range(parts):
        size = base + (i < extra)
        if size:
            out.append((start, size))
        start += size
    return out


class Lowering:
    """The state of compiling one graph: its DRAM buffers and initial image, one
    :class:`CoreEmitter` per core, the barrier count and each kernel's mapping."""

    def __init__(self, graph: KernelGraph, chip: ChipSpec, act_dtype: str = "bf16") -> None:
        graph.validate()
        self.graph, self.chip, self.act_dtype = graph, chip, act_dtype
        self.timing = CoreTiming.of(chip)
        self.ems = [CoreEmitter(c, self.timing.local_sram_bytes)
                    for c in range(self.timing.cores)]
        self.dram = DramAllocator()
        self.bufs: dict[str, Buf] = {}
        self.init: dict[int, bytes] = {}
        self.barriers = 0
        self.kernels: list[dict] = []  # per node: label, op, mapping

    # ---- placement ------------------------------------------------------------------------
    def storage_dtype(self, dtype: str) -> str:
        return self.act_dtype if dtype in FLOAT_DTYPES else dtype

    def place(self, name: str) -> Buf:
        if name not in self.bufs:
            info = self.graph.tensors[name]
            dtype = self.storage_dtype(info.dtype)
            size = int(np.prod(info.shape, dtype=np.int64)) * DTYPE[dtype].itemsize
            self.bufs[name] = Buf(self.dram.alloc(size), info.shape, dtype)
        return self.bufs[name]

    def alias(self, name: str, like: Buf, shape: tuple[int, ...]) -> Buf:
        self.bufs[name] = Buf(like.addr, tuple(shape), like.dtype)
        return self.bufs[name]

    def temp(self, shape: tuple[int, ...], dtype: str) -> Buf:
        size = int(np.prod(shape, dtype=np.int64)) * DTYPE[dtype].itemsize
        return Buf(self.dram.alloc(size), tuple(shape), dtype)

    def place_constants(self) -> None:
        for name, value in self.graph.constants.items():
            buf = self.place(name)
            data = np.asarray(value)
            if buf.dtype in FLOAT_DTYPES or data.dtype.kind == "f":
                data = saturate_finite(np.asarray(data, np.float32), buf.dtype)
            self.init[buf.addr] = c_bytes(data, NP_DTYPE[buf.dtype])

    # ---- kernels ----------------------------------------------------------------------------
    def begin(self, node: KernelNode) -> None:
        for em in self.ems:
            em.label = node.output
            em.reset_sram()

    def end(self) -> None:
        for em in self.ems:
            em.barrier(self.barriers)
        self.barriers += 1

    def next_phase(self) -> None:
        """A barrier inside a kernel: later instructions may read what earlier ones wrote
        to DRAM on any core, and local SRAM is free again."""
        self.end()
        for em in self.ems:
            em.reset_sram()

    def constant(self, name: str, value: np.ndarray, dtype: str) -> Buf:
        """A constant the compiler derives (e.g. a reshaped conv weight) placed in DRAM."""
        data = saturate_finite(np.asarray(value, np.float32), dtype) if dtype in FLOAT_DTYPES \
            else np.asarray(value)
        np_dt = NP_DTYPE[dtype]
        buf = Buf(self.dram.alloc(data.size * np_dt.itemsize), tuple(data.shape), dtype)
        self.init[buf.addr] = c_bytes(data, np_dt)
        self.bufs[name] = buf
        return buf
