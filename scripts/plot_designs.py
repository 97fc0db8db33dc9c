"""Draw designs/forge-i1/pareto.png and designs/forge-t1/pareto.png (shown by
``chipforge report`` and docs/designs.md) from the checked-in Pareto fronts of the DSE runs.

The reference chips (GPUs, and forge-i1/forge-t1 as now in the catalog) are evaluated
afresh on each run's problem, so the stars are today's models, not the run's snapshot.

    .venv/bin/python scripts/plot_designs.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from chipforge.dse import load_problem  # noqa: E402
from chipforge.dse._run import reference_metrics  # noqa: E402

DESIGNS = Path(__file__).resolve().parents[1] / "designs"

# (run folder, label, colour) per front drawn: the searches under the legal scenarios
# (issue 13; full-ban's fronts equal domestic-2026's, both made at SMIC)
I1_RUNS = [("forge-i1/run-tsmc-2026", "tsmc-2026: NSGA-II", "tab:gray"),
           ("forge-i1/run-tsmc-2026-local", "tsmc-2026: local grid (the catalog chip)",
            "tab:purple"),
           ("forge-i1/run-tsmc-2026-approved", "tsmc-2026-approved: NSGA-II", "tab:blue"),
           ("forge-i1/run-domestic-2026", "domestic-2026 (SMIC N+2)", "tab:red")]
T1_RUNS = [("forge-t1/run-tsmc-2026", "tsmc-2026: NSGA-II", "tab:gray"),
           ("forge-t1/run-tsmc-2026-local", "tsmc-2026: local grid (the catalog chip)",
            "tab:olive"),
           ("forge-t1/run-tsmc-2026-approved", "tsmc-2026-approved: NSGA-II", "tab:orange"),
           ("forge-t1/run-domestic-2026", "domestic-2026 (SMIC N+2)", "tab:red")]


def feasible_front(run: str) -> list[dict[str, str]]:
    with open(DESIGNS / run / "pareto.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["feasible"] == "1"]


def references(space: str, constraints: str, scenario: str) -> dict[str, dict]:
    """The constraints file's reference chips, as the DSE evaluates them (today's catalog)."""
    return reference_metrics(load_problem(DESIGNS / space, DESIGNS / constraints, scenario))


def draw(out: Path, runs: list[tuple[str, str, str]], x: str, y: str, refs: dict[str, dict],
         labels: tuple[str, str], log_y: bool) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for run, label, colour in runs:
        front = sorted(feasible_front(run), key=lambda r: float(r[x]))
        ax.plot([float(r[x]) for r in front], [float(r[y]) for r in front], "o-", ms=3,
                lw=0.8, c=colour, label=label)
    for name, m in refs.items():
        ax.scatter([m[x]], [m[y]], marker="*", s=180, c="k", zorder=3)
        # our chips labelled below their star, the GPUs above, so close stars stay legible
        offset = (6, -12) if name.startswith("forge") else (6, 4)
        ax.annotate(name, (m[x], m[y]), xytext=offset, textcoords="offset points")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor log labels collide
    if log_y:
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"wrote {out}")


def main() -> None:
    i1_refs = references("forge-i1/space-tsmc.yaml", "forge-i1/constraints-tsmc.yaml",
                         "tsmc-2026")
    draw(DESIGNS / "forge-i1/pareto.png", I1_RUNS, "serving_usd_per_million_tokens", "power_w",
         i1_refs, ("$ per million tokens, Llama-3.1-70B + 8B decode mix (lower is better)",
                   "average power on the mix, W"), log_y=False)
    t1_refs = references("forge-t1/space-tsmc.yaml", "forge-t1/constraints-tsmc.yaml",
                         "tsmc-2026")
    draw(DESIGNS / "forge-t1/pareto.png", T1_RUNS, "training_usd_per_million_tokens",
         "training_tokens_per_s", t1_refs,
         ("$ per million training tokens, Llama-3.1-70B step (lower is better)",
          "training tokens/s per chip"), log_y=True)


if __name__ == "__main__":
    main()
