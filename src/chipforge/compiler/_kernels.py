"""The kernel table: KGraph op -> lowering function."""

from __future__ import annotations

from chipforge.compiler import _k_conv, _k_layout, _k_matmul, _k_rows

KERNELS = {
    "matmul": _k_matmul.matmul_kernel,
    "conv2d": _k_conv.conv2d_kernel,
    "max_pool2d": _k_conv.max_pool2d_kernel,
    "global_avg_pool2d": _k_rows.global_avg_pool_kernel,
    "softmax": _k_rows.softmax_kernel,
    "layernorm": _k_rows.norm_kernel,
    "rmsnorm": _k_rows.norm_kernel,
    "quantize": _k_rows.quantize_kernel,
    "reshape": _k_layout.reshape_kernel,
    "permute": _k_layout.permute_kernel,
    "slice": _k_layout.slice_kernel,
    "cat": _k_layout.cat_kernel,
    "expand": _k_layout.expand_kernel,
    "embedding": _k_layout.embedding_kernel,
    "scatter_add": _k_layout.scatter_add_kernel,
    "pow": _k_rows.pow_kernel,
    **{op: _k_rows.unary_kernel for op in _k_rows.UNARY},
    **{op: _k_rows.binary_kernel for op in _k_rows.BINARY},
    **{op: _k_rows.reduce_kernel for op in ("sum", "max", "mean")},
}
