"""PNG plots for the report: a roofline per chip, and per-workload comparison bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report runs on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from chipforge.arch import ChipSpec  # noqa: E402

# roofs drawn, in this order; dtypes with the same peak share one line (and one label)
ROOF_DTYPES = ("fp32", "bf16", "fp16", "fp8_e4m3", "int8")
_ROOF_STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))
OUR_COLOR, GPU_COLOR = "tab:orange", "tab:green"


def roof_groups(chip: ChipSpec) -> dict[float, list[str]]:
    """Each distinct dense peak (FLOP/s, highest first) and the dtypes that share it."""
    peaks: dict[float, list[str]] = {}
    for dtype in ROOF_DTYPES:
        peak = chip.peak_flops(dtype) if dtype in chip.supported_dtypes else 0.0
        if peak:
            peaks.setdefault(peak, []).append(dtype)
    return dict(sorted(peaks.items(), reverse=True))


def roofline(chip: ChipSpec, points: list[tuple[str, float, float, str]], path: Path) -> Path:
    """``points`` are (workload, FLOPs per DRAM byte, achieved FLOP/s, limiter).

    One roof per distinct peak (dtypes with equal peaks share it and its label), the DRAM
    slope, and each workload a marker of its own named in the legend: no labels on the
    plot to overlap."""
    from chipforge.report._format import eng

    fig, ax = plt.subplots(figsize=(7.6, 4.6), dpi=110)
    bw = chip.memory.bandwidth_bytes_per_s
    lowest_ai = min([p[1] for p in points] + [10.0])
    intensity = np.logspace(np.log10(lowest_ai / 4), 4, 200)
    peaks = roof_groups(chip)
    for i, (peak, dtypes) in enumerate(peaks.items()):
        # each roof starts at its own ridge (peak / bandwidth), so the roofs never coincide
        flat = intensity[intensity >= peak / bw]
        ax.plot(np.r_[peak / bw, flat], np.full(len(flat) + 1, peak),
                linestyle=_ROOF_STYLES[i % 5], color=f"C{i}", lw=1.6,
                label=f"{' = '.join(dtypes)} roof: {eng(peak, 'FLOP/s')}, "
                      f"ridge {peak / bw:.0f} FLOP/B")
    slope = intensity[bw * intensity <= max(peaks, default=bw * intensity[-1])]
    ax.plot(slope, bw * slope, color="0.35", lw=1.2, label=f"DRAM slope: {eng(bw, 'B/s')}")
    markers = "os^vDP*Xhp<>"
    for i, (label, ai, achieved, bound) in enumerate(points):
        ax.scatter([ai], [achieved], s=34, zorder=3, marker=markers[i % len(markers)],
                   color=f"C{(i + 5) % 10}", edgecolors="black", linewidths=0.4,
                   label=f"{label} ({bound})")
    top = max([*peaks, *(p[2] for p in points), 1.0])
    ax.set_ylim(min([bw * intensity[0], *(p[2] for p in points)]) / 2, top * 2.5)
    ax.yaxis.set_major_formatter(EngFormatter(unit="FLOP/s"))
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / DRAM byte)",
           ylabel="FLOP/s", title=f"{chip.name} roofline")
    ax.grid(True, which="both", alpha=0.25)
    # outside the axes: inside, the legend covers points and roofs
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
              title="roof / workload (limiter)", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def workload_bars(workload: str, unit: str, values: dict[str, float | str], path: Path,
                  own: frozenset[str] = frozenset()) -> Path:
    """Throughput of one workload on each chip: our designs (``own``) in one colour, GPUs
    in another. A chip whose value is a string (say "does not fit") gets no bar but that
    string where the bar would be: never a number for a configuration that cannot run."""
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(6.4, 3.0), dpi=110)
    names = list(values)
    widths = [v if isinstance(v, float) else 0.0 for v in values.values()]
    colors = [OUR_COLOR if n in own else GPU_COLOR for n in names]
    ax.barh(names, widths, color=colors)
    for i, n in enumerate(names):
        if isinstance(values[n], str):
            ax.text(0, i, f"  {values[n]}", va="center", fontsize=7, color="#8a1c1c")
    ax.set(xlabel=f"{unit}/s", title=workload)
    ax.xaxis.set_major_formatter(EngFormatter())
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.25)
    ax.legend(handles=[Patch(color=OUR_COLOR, label="our designs"),
                       Patch(color=GPU_COLOR, label="GPUs (bought)")],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def stacked_bars(parts: dict[str, dict[str, float]], unit: str, title: str,
                 path: Path) -> Path:
    """One horizontal bar per chip, split into its components (same order for all)."""
    names = list(parts)
    keys = list(dict.fromkeys(k for p in parts.values() for k in p))
    fig, ax = plt.subplots(figsize=(6.8, 0.45 * len(names) + 2.0), dpi=110)
    left = np.zeros(len(names))
    for key in keys:
        widths = np.array([parts[n].get(key, 0.0) for n in names])
        ax.barh(names, widths, left=left, label=key)
        left += widths
    ax.set(xlabel=unit, title=title)
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.25)
    # below the axes: inside, it covers the longest bar
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4,
              frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def scaling_plot(curves: dict[str, list[tuple[int, float, float]]], path: Path,
                 title: str) -> Path:
    """Days to train (left) and MFU (right) versus chip count, one line per chip; a chip
    with no fitting plan at a count has no point there."""
    fig, (days_ax, mfu_ax) = plt.subplots(1, 2, figsize=(9.0, 3.4), dpi=110)
    for i, (chip, points) in enumerate(curves.items()):
        if not points:
            continue
        n, days, mfu = zip(*points)
        days_ax.plot(n, days, marker="o", color=f"C{i}", label=chip)
        mfu_ax.plot(n, [100 * m for m in mfu], marker="o", color=f"C{i}", label=chip)
    days_ax.set(xscale="log", yscale="log", xlabel="chips", ylabel="days to train",
                title=title)
    mfu_ax.set(xscale="log", xlabel="chips", ylabel="MFU (%)", title="MFU versus scale")
    for ax in (days_ax, mfu_ax):
        ax.grid(True, which="both", alpha=0.25)
    mfu_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def cdf_plot(series: dict[str, tuple[np.ndarray, np.ndarray]], slo: float, xlabel: str,
             path: Path) -> Path:
    """Empirical CDFs (x, fraction) per chip, with the SLO as a vertical line."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=110)
    for i, (chip, (x, y)) in enumerate(series.items()):
        ax.step(x, y, where="post", color=f"C{i}", label=chip)
    ax.axvline(slo, color="0.3", linestyle="--", lw=1.0, label=f"SLO {slo:g} s")
    ax.set(xlabel=xlabel, ylabel="fraction of requests", ylim=(0, 1.02))
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
