"""The kernel graph and its lowering to a program (the public names are in
:mod:`chipforge.compiler`).

- ``_kernel_graph``: ``KernelGraph`` (named tensors, ``KernelNode`` s over ``KERNEL_OPS``)
  and ``CompileError``, the compiler's one input format; the op semantics.
- ``_reference``: float64 numpy evaluation of a kernel graph, the oracle front ends and
  the quantizer's calibration use.
- ``_quant``: post-training quantization, a kernel graph to a kernel graph.
- ``_compile``: ``compile_graph``, one kernel per node from its op -> kernel table.
- ``_lowering``: the context every kernel works in (``Lowering``, ``Buf``, ``split``).
- ``_emit``: per-core instruction streams, semaphore tokens, SRAM and DRAM allocators.
- the kernels: ``_matmul_kernel`` (the systolic GEMM), ``_row_kernels`` (elementwise,
  reductions, softmax, norms, quantize), ``_layout_kernels`` (DMA copies: permute, slice,
  cat, expand, embedding, scatter_add), ``_conv_kernels`` (conv2d as implicit GEMM, pooling),
  ``_math_kernels`` (elementwise math as vector sequences: erf, exact GELU, rounding,
  trigonometric, remainders, powers).
"""
