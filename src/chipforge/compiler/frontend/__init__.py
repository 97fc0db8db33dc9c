"""Front ends: where kernel graphs come from (the public names are in
:mod:`chipforge.compiler`).

- ``_torch_export``: ``capture``, an ``nn.Module`` through ``torch.export`` (inference).
- ``_aot_autograd``: ``capture_fx``, aot_autograd's forward and backward graphs (training).
- ``_capture``: the state of one capture and the FX node walk both share.
- ``_aten_ops``, ``_aten_nn``, ``_aten_training``: the ATen op handlers, one table each;
  ``_handlers`` assembles them into the registry a capture uses.
- ``_from_ops``: the op IR (``chipforge.ops``) as a kernel graph of synthetic tensors.
- ``_examples``: small models built by hand (no PyTorch needed).

Only the PyTorch modules (``_torch_export``, ``_aot_autograd``, ``_capture``, ``_aten_*``,
``_handlers``) import torch; this package's ``__init__`` imports none of them.
"""
