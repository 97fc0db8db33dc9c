"""Chip specs and the catalog: the hardware description language of chipforge."""

from chipforge.arch._loader import catalog_names, derive_chip, load_chip, spec_from_dict
from chipforge.arch._spec import BITS, DTYPES, PROCESS_NODES, ChipSpec, Core, DType, MatrixUnit

__all__ = ["BITS", "DTYPES", "PROCESS_NODES", "ChipSpec", "Core", "DType", "MatrixUnit",
           "catalog_names", "derive_chip", "load_chip", "spec_from_dict"]
