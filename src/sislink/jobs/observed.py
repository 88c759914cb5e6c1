"""What the jobs feed the operator's metrics beyond what the runner counts: the items a mark
export skipped, by their reason (the runner sees only the job's summary, which has no reasons)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sislink.operations import metrics
from sislink.sync.export_report import ExportReport, Outcome


def count_export_skips(kind: str, reports: Iterable[ExportReport]) -> None:
    """Count the items these exports skipped, by skip reason (a dry run sent nothing: none)."""
    reasons = Counter(
        item.skip_reason or "unknown"
        for report in reports
        if not report.dry_run
        for item in report.items
        if item.outcome is Outcome.SKIPPED
    )
    metrics.items_skipped(kind, reasons)
