"""PNG plots for the report: a roofline per chip, and per-workload comparison bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report runs on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from chipforge.arch import ChipSpec  # noqa: E402


def roofline(chip: ChipSpec, points: list[tuple[str, float, float]], path: Path) -> Path:
    """``points`` are (label, FLOPs per DRAM byte, achieved FLOP/s) of each workload."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    bw = chip.memory.bandwidth_bytes_per_s
    intensity = np.logspace(-1, 4, 200)
    for dtype, style in (("bf16", "-"), ("fp8_e4m3", "--"), ("int8", ":")):
        peak = chip.peak_flops(dtype)
        if peak:
            ax.plot(intensity, np.minimum(peak, bw * intensity), style, lw=1.6,
                    label=f"{dtype} roof ({peak / 1e12:.0f} TFLOP/s)")
    for label, ai, achieved in points:
        ax.scatter([ai], [achieved], s=22, zorder=3)
        ax.annotate(label, (ai, achieved), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / DRAM byte)",
           ylabel="FLOP/s", title=f"{chip.name} roofline ({bw / 1e12:.2f} TB/s)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def workload_bars(workload: str, unit: str, values: dict[str, float], path: Path) -> Path:
    """Throughput of one workload on each chip; our chips in one colour, GPUs in another."""
    fig, ax = plt.subplots(figsize=(5.6, 3.0), dpi=110)
    names = list(values)
    colors = ["tab:orange" if n.startswith("forge") else "tab:green" for n in names]
    ax.barh(names, [values[n] for n in names], color=colors)
    ax.set(xlabel=f"{unit}/s", title=workload)
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.25)
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
