"""Chip specs and the catalog: the hardware description language of chipforge."""

from chipforge.arch._loader import catalog_names, derive_chip, load_chip, spec_from_dict
from chipforge.arch._spec import BITS, DTYPES, ChipSpec, Core, MatrixUnit

__all__ = ["BITS", "DTYPES", "ChipSpec", "Core", "MatrixUnit", "catalog_names", "derive_chip",
           "load_chip", "spec_from_dict"]
