"""Compiled graphs run on the simulated chip (the public names are in
:mod:`chipforge.compiler`).

- ``_runner``: ``ChipRunner``, a kernel graph compiled for a chip whose calls run the
  simulator on torch tensors, and ``feed`` (torch inputs as the graph's numpy inputs).
- ``_backend``: ``torch_backend``, the ``torch.compile`` backend (inference; training
  goes to ``_train``).
- ``_train``: the aot_autograd backend for training and ``make_chip_adamw``, an AdamW
  whose update runs on the chip.

Nothing here imports torch at module level.
"""
