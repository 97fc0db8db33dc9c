"""Small, realistic PyTorch models of a recommendation platform, as users write them:
:class:`DLRM`, :class:`TwoTower` and :class:`DIN` (plain ``torch.nn.Module`` classes).

They are the platform's own models in the compiler's model suite (``tests/models/``), next
to Hugging Face architectures. Each has ``example_inputs(batch=...)`` giving a tuple of
random inputs of the right shapes and dtypes (seeded, so reproducible). This package
imports torch and nothing else of chipforge.
"""

from chipforge.examples._recsys import DIN, DLRM, TwoTower

__all__ = ["DIN", "DLRM", "TwoTower"]
