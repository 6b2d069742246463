"""The results report: the paper's table, an HTML page with charts and qualitative overlays."""

from nvos.report.build import ReportSummary, build_report
from nvos.report.rows import method_label, order_methods
from nvos.report.table import COLUMNS, format_score, load_summaries

__all__ = [
    "COLUMNS",
    "ReportSummary",
    "build_report",
    "format_score",
    "load_summaries",
    "method_label",
    "order_methods",
]
