"""A faster stand-in for Amaranth 0.5's combinational-loop check, for the tests that export
the bf16 core's Verilog (tests/rtl/test_icarus.py).

``amaranth.hdl._nir.Netlist.check_comb_cycles`` is a depth-first search over single bits:
it asks every output bit of a cell for its combinational sources. For an arithmetic
operator or a part-select (``Operator`` other than ``~ & | ^ m``, ``Part``) every output
bit has the same sources, all of its inputs, so a W-bit cell enumerates W x inputs edges;
the bf16 adders' wide shifts make that 60% of exporting the 8 x 8 bf16 core (~40 s).

This search is the same one, except that once one bit of such a cell is finished without
finding a cycle, its sibling bits are finished at once: their sources are the same nets,
all finished already, and an edge to a finished net is never a back edge, so skipping them
finds exactly the cycles the full search finds. When it finds one, Amaranth's own check
runs and raises its ``CombinationalCycle`` with the path, so the errors are Amaranth's.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth.hdl import _nir

_BITWISE = ("~", "&", "|", "^", "m")


def _same_sources_for_every_bit(cell: object) -> bool:
    """``cell.comb_edges_to(bit)`` does not depend on ``bit`` (see _nir's comb_edges_to)."""
    if isinstance(cell, _nir.Operator):
        return cell.operator not in _BITWISE
    return isinstance(cell, _nir.Part)


def _has_comb_cycle(netlist: _nir.Netlist) -> bool:
    checked: set = set()
    busy: set = set()
    finished_cells: set[int] = set()

    def traverse(net) -> bool:
        if net in checked:
            return False
        if net in busy:
            return True
        busy.add(net)
        found = False
        if net.is_const:
            pass
        elif net.is_late:
            found = traverse(netlist.connections[net])
        elif net.cell not in finished_cells:
            cell = netlist.cells[net.cell]
            for src, _ in cell.comb_edges_to(net.bit):  # a loop, not any(): stack depth
                if traverse(src):
                    found = True
                    break
            if not found and _same_sources_for_every_bit(cell):
                finished_cells.add(net.cell)
        busy.remove(net)
        checked.add(net)
        return found

    for cell_idx, cell in enumerate(netlist.cells):
        if any(traverse(net) for net in cell.output_nets(cell_idx)):
            return True
    return any(traverse(net) for value in netlist.signals.values() for net in value)


def fast_check(original: Callable[[_nir.Netlist], None]) -> Callable[[_nir.Netlist], None]:
    """A ``check_comb_cycles`` that searches quickly and defers to ``original`` (Amaranth's,
    which raises with the cycle's path) when there is a cycle."""
    def check_comb_cycles(self: _nir.Netlist) -> None:
        if _has_comb_cycle(self):
            original(self)
    return check_comb_cycles
