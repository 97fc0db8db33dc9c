"""The memory-technology table lives in chipforge.cost (cost is below dse and the legal
package needs it too); dse re-exports it under its old names."""

from chipforge.cost import MEMORY_TECHS, MemoryTech

__all__ = ["MEMORY_TECHS", "MemoryTech"]
