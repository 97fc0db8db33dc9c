"""The core (specs, ops, workloads, perf engine, report, CLI) must work without PyTorch.

A child interpreter blocks ``torch`` as an environment without it behaves: a finder first
on ``sys.meta_path`` raises ModuleNotFoundError for it (``sys.modules['torch'] = None``
would also refuse the import, but leaves a ``torch`` key that libraries probing
``sys.modules``, such as scipy's array-API helpers, take for a loaded torch), and a
wrapper around ``builtins.__import__`` records every attempt, so an ``import torch``
hidden behind ``try/except ImportError`` is caught too.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import builtins
    import sys

    attempts = []
    real_import = builtins.__import__

    def recording_import(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            attempts.append(name)
        return real_import(name, *args, **kwargs)

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    builtins.__import__ = recording_import
    sys.modules.pop("torch", None)
    sys.meta_path.insert(0, NoTorch())

    import chipforge, chipforge.arch, chipforge.ops, chipforge.workloads
    import chipforge.perf, chipforge.report, chipforge.cli
    from chipforge import estimate, ops
    from chipforge.report import compare_suite

    est = estimate(ops.matmul(4096, 4096, 4096), "h100-sxm")
    assert est.flops == 2 * 4096**3, est.flops
    assert est.seconds > 0
    graph_rows = compare_suite(["forge-i1"])["rows"]
    assert all("error" not in row["cells"][0] for row in graph_rows)
    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    assert loaded == [], loaded
    assert attempts == [], attempts

    # the block and the recorder work: our own import is refused and recorded
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("torch was importable: the block does not work")
    assert attempts == ["torch"], attempts
    print("ok")
""")


def test_core_runs_without_torch():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"
