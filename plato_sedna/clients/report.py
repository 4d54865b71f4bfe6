"""What a trainer adds to Plato's report: its last epoch's training loss (for ``delta_loss``)."""

from __future__ import annotations


def add_train_loss(client) -> None:
    """Make ``client``'s reports carry ``train_loss`` from its trainer's run history."""
    customize = client._context.report_customizer

    def with_train_loss(report):
        report = customize(report) if customize is not None else report
        history = getattr(client._context.trainer, "run_history", None)
        try:
            report.train_loss = float(history.get_latest_metric("train_loss"))
        except (AttributeError, ValueError, TypeError, KeyError, IndexError):
            report.train_loss = None
        return report

    client._context.report_customizer = with_train_loss
