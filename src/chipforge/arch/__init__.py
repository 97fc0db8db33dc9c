"""Chip specs and the catalog: the hardware description language of chipforge."""

from chipforge.arch._loader import catalog_names, derive_chip, load_chip, spec_from_dict
from chipforge.arch._safe_yaml import decode_text, parse_json, parse_yaml, read_text
from chipforge.arch._spec import BITS, DTYPES, PROCESS_NODES, ChipSpec, Core, DType, MatrixUnit

__all__ = ["BITS", "DTYPES", "PROCESS_NODES", "ChipSpec", "Core", "DType", "MatrixUnit",
           "catalog_names", "decode_text", "derive_chip", "load_chip", "parse_json",
           "parse_yaml", "read_text", "spec_from_dict"]
