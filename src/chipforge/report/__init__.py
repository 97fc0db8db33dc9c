"""Reports: the comparison data, plots and the HTML page."""

from chipforge.report._compare import compare_suite
from chipforge.report._html import write_report

__all__ = ["compare_suite", "write_report"]
