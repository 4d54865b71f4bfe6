"""A PNG of accuracy and loss per round, written next to ``summary.json`` by ``plato-sedna run``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

LOGGER = logging.getLogger(__name__)

PLOT_NAME = "progress.png"


def write_progress_plot(
    rounds: Sequence[int], accuracy: Sequence[float | None], loss: Sequence[float | None], path: Path, title: str
) -> Path | None:
    """Plot accuracy (left axis) and loss (right axis) against the round; None when nothing to plot.

    matplotlib is imported here only; without it the plot is skipped with a warning.
    """
    if not rounds:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        LOGGER.warning("matplotlib is not installed; no %s", path.name)
        return None
    figure, accuracy_axis = pyplot.subplots(figsize=(6.4, 4.0), dpi=100)
    try:
        accuracy_axis.plot(rounds, [a if a is not None else float("nan") for a in accuracy], "o-", color="tab:blue")
        accuracy_axis.set_xlabel("round")
        accuracy_axis.set_ylabel("accuracy", color="tab:blue")
        if any(value is not None for value in loss):
            loss_axis = accuracy_axis.twinx()
            loss_axis.plot(rounds, [v if v is not None else float("nan") for v in loss], "s--", color="tab:red")
            loss_axis.set_ylabel("training loss", color="tab:red")
        accuracy_axis.set_title(title)
        figure.tight_layout()
        temporary = path.with_name(f".{path.name}.tmp")
        figure.savefig(temporary, format="png")
        temporary.replace(path)
    finally:
        pyplot.close(figure)
    return path
