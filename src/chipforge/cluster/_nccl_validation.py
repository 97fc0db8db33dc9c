"""Inter-node NCCL validation: data/validation/cluster/nccl_a100.csv against collective_time.

The table has four published all-reduce measurements on A100 nodes. Which row does what:

* Vidur 1 node (8 GPUs, 64 MiB): in one NVLink node, so the single-chip engine's NCCL model
  answers it; a check of that model through this package's placement.
* NVIDIA/nccl issue 837 (2 nodes, 2 x 200 Gb/s HDR per node, 53.95 GB/s bus bandwidth on
  NCCL 2.9.9): the one row whose fabric is documented and whose time the network bounds.
  ``NET_EFFICIENCY`` is fitted on it (``fit_net_efficiency``); it is not a test of the model.
* NVIDIA/nccl issue 812 (DGX A100, 8 x 200 Gb/s HDR per node, ~192 GB/s, 2 nodes): held out.
* Vidur 2 nodes (17.5 GB/s): the inter-node fabric of Vidur's cluster is not documented, so
  no system can be built for it; shown, excluded from the error.

"large" messages are modelled at 1 GiB, where nccl-tests' bus bandwidth has plateaued.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, replace

from chipforge.cluster import _collective_model
from chipforge.cluster._system import System, system
from chipforge.errors import ClusterError

__all__ = ["NcclRow", "nccl_validation", "nccl_validation_markdown", "fit_net_efficiency",
           "single_node_nccl_scores"]

LARGE_BYTES = 2**30
_TABLE = ("cluster", "nccl_a100.csv")


@dataclass(frozen=True)
class NcclRow:
    source: str
    nodes: int
    gpus: int
    interconnect: str
    message_bytes: float
    measured_busbw_gb_s: float
    modelled_busbw_gb_s: float | None
    algorithm: str
    role: str  # "fit", "held out", "in node" or "excluded"
    note: str

    @property
    def error(self) -> float | None:
        if self.modelled_busbw_gb_s is None:
            return None
        return self.modelled_busbw_gb_s / self.measured_busbw_gb_s - 1


def _rows() -> list[dict[str, str]]:
    from chipforge.perf.validation import read_table, validation_dir

    return read_table(validation_dir().joinpath(*_TABLE))


def _number(text: str, field: str) -> float:
    """The leading number of a cell such as '174.0 (derived)' or '~192'."""
    token = text.strip().lstrip("~").split(" ")[0]
    try:
        return float(token)
    except ValueError:
        raise ClusterError(f"{'/'.join(_TABLE)}: {field} {text!r}; expected a number") \
            from None


def _count(text: str, field: str) -> int:
    """A whole count from a cell such as '2' or 'multi (2)'."""
    found = re.findall(r"\d+", text)
    if not found:
        raise ClusterError(f"{'/'.join(_TABLE)}: {field} {text!r}; expected a count")
    return int(found[-1])


def _dgx_a100(gpus: int, nics_per_chip: float = 1.0) -> System:
    base = system("a100-sxm", gpus, preset="dgx-a100")
    if base.network is None or nics_per_chip == base.network.nics_per_chip:
        return base
    return replace(base, network=replace(base.network, nics_per_chip=nics_per_chip))


def _case(row: dict[str, str]) -> tuple[System | None, float, str, str]:
    """The system a row ran on, its message size, its role and why."""
    gpus = _count(row["gpus"], "gpus")
    size = LARGE_BYTES if not row["message_bytes"].strip().isdigit() \
        else float(row["message_bytes"])
    inter = row["interconnect"]
    if _count(row["nodes"], "nodes") == 1:
        return _dgx_a100(gpus), size, "in node", "the engine's NCCL model in one node"
    if "unspecified" in inter:
        return None, size, "excluded", "inter-node fabric not documented"
    if inter.startswith("2x200"):
        return _dgx_a100(gpus, nics_per_chip=2 / 8), size, "fit", \
            "2 HDR NICs per 8 GPUs; NET_EFFICIENCY fitted here"
    return _dgx_a100(gpus), size, "held out", "DGX A100, 8 HDR NICs per node"


def nccl_validation() -> list[NcclRow]:
    """Every row of cluster/nccl_a100.csv, measured against modelled bus bandwidth."""
    out = []
    for row in _rows():
        sys_, size, role, note = _case(row)
        measured = _number(row["busbw_GBps"], "busbw_GBps")
        modelled, algo = None, "n/a"
        if sys_ is not None:
            t = _collective_model.collective_time(sys_, "all_reduce", size,
                                             _count(row["gpus"], "gpus"))
            modelled, algo = t.bus_bytes_per_s / 1e9, t.algorithm
        out.append(NcclRow(row["source"], _count(row["nodes"], "nodes"),
                           _count(row["gpus"], "gpus"),
                           row["interconnect"], size, measured, modelled, algo, role, note))
    return out


def fit_net_efficiency() -> float:
    """The NET_EFFICIENCY that makes the "fit" row's modelled bus bandwidth its measured one
    (bisection; the bus bandwidth rises with the efficiency)."""
    fit_rows = [r for r in _rows() if _case(r)[2] == "fit"]
    if len(fit_rows) != 1:
        raise ClusterError(f"{'/'.join(_TABLE)}: {len(fit_rows)} rows to fit on; expected 1")
    row = fit_rows[0]
    sys_, size, _, _ = _case(row)
    assert sys_ is not None
    target = _number(row["busbw_GBps"], "busbw_GBps") * 1e9
    gpus = _count(row["gpus"], "gpus")
    saved = _collective_model.NET_EFFICIENCY
    low, high = 0.05, 1.0
    try:
        for _ in range(40):
            mid = (low + high) / 2
            _collective_model.NET_EFFICIENCY = mid  # the shared parameter, set for this search
            busbw = _collective_model.collective_time(sys_, "all_reduce", size, gpus)
            busbw = busbw.bus_bytes_per_s
            low, high = (mid, high) if busbw < target else (low, mid)
    finally:
        _collective_model.NET_EFFICIENCY = saved
    return (low + high) / 2


def single_node_nccl_scores() -> list[tuple[str, int, float, float]]:
    """(table, held-out rows, median APE, median signed) of the single-node a100/h100
    NCCL tables, as chipforge.perf.validation scores them (for reference)."""
    from chipforge.arch import load_chip
    from chipforge.perf.validation import TABLES, held_out, score

    out = []
    for name in ("nccl", "h100_nccl"):
        table = TABLES[name]
        s = score(name, held_out(table.samples()), load_chip(table.chip))
        out.append((name, s.rows, s.median_ape, s.median_signed))
    return out


def nccl_validation_markdown(rows: list[NcclRow] | None = None) -> str:
    """A markdown table of ``nccl_validation()`` with the held-out error."""
    rows = rows if rows is not None else nccl_validation()
    lines = ["| source | nodes x GPUs | interconnect | message | measured busbw (GB/s) | "
             "modelled (GB/s) | algorithm | error | role |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        modelled = f"{r.modelled_busbw_gb_s:.1f}" if r.modelled_busbw_gb_s else "n/a"
        error = f"{100 * r.error:+.1f}%" if r.error is not None else "n/a"
        size = f"{r.message_bytes / 2**20:g} MiB"
        lines.append(f"| {r.source} | {r.nodes} x {r.gpus // r.nodes} | {r.interconnect} | "
                     f"{size} | {r.measured_busbw_gb_s:g} | {modelled} | {r.algorithm} | "
                     f"{error} | {r.role}: {r.note} |")
    held = [abs(r.error) for r in rows if r.role in ("held out", "in node")
            and r.error is not None]
    if held:
        lines.append("")
        lines.append(f"Median absolute error over the {len(held)} rows not fitted on: "
                     f"{100 * statistics.median(held):.1f}%.")
    return "\n".join(lines)
