"""chipforge: design, verify, program and evaluate AI training and inference chips."""

from chipforge.arch import ChipSpec, load_chip
from chipforge.compiler import torch_backend
from chipforge.errors import ChipforgeError
from chipforge.perf import Estimate, estimate

__version__ = "0.1.0"
__all__ = ["ChipSpec", "ChipforgeError", "Estimate", "estimate", "load_chip", "torch_backend"]
