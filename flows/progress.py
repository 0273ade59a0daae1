"""Progress bars at the terminal: counts, rate and ETA for downloads, epochs and sweeps.

Drawn with rich (installed with Prefect) on standard error when it is a terminal; otherwise
(a pipe, a file, CI, a worker process) nothing is drawn and the steps' log lines are the
record. ``MYNN_PROGRESS=plain`` turns bars off on a terminal too.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator


def interactive() -> bool:
    """Whether bars are drawn: standard error is a terminal that can draw them."""
    return (os.environ.get("MYNN_PROGRESS", "auto") != "plain" and sys.stderr.isatty()
            and os.environ.get("TERM", "") != "dumb")


class Bar:
    """One bar: :meth:`advance` by a count, or :meth:`update` to an absolute one."""

    def __init__(self, progress=None, task=None):
        self._progress, self._task = progress, task

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def update(self, completed: float, total: float | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, **({} if total is None else {"total": total}))


@contextmanager
def bar(description: str, total: float | None, unit: str) -> Iterator[Bar]:
    """A bar of ``total`` ``unit`` ("B" for bytes: sizes and transfer rate; else a count such as
    "epochs" with its rate), with the elapsed time and the ETA; a :class:`Bar` that draws
    nothing when :func:`interactive` is false."""
    if not interactive():
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, ProgressColumn,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text("" if not task.speed else f"{task.speed:.2f} {unit}/s", style="progress.data.speed")

    counts = [DownloadColumn(), TransferSpeedColumn()] if unit == "B" else [MofNCompleteColumn(), TextColumn(unit),
                                                                          Rate()]
    with Progress(TextColumn("{task.description}"), BarColumn(), *counts, TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=Console(stderr=True)) as progress:  # (log lines print above it)
        yield Bar(progress, progress.add_task(description, total=total))
