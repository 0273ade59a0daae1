"""The book's experiments: its table of reported numbers and the points that reproduce them.

``BOOK_TABLE`` holds every number the book reports (../shared/spec/network-and-experiments.md);
:func:`book_points` turns it into the configs ``mynn reproduce`` trains, per seed: the learning
rates, the two epoch curves (lr 0.2 and 0.1, 1..10 epochs), the hidden nodes, and the run on
the book's 100/10 subsets.
"""
from __future__ import annotations

from dataclasses import dataclass

from mynn.config import NetworkConfig


@dataclass(frozen=True)
class BookRow:
    """One row of the book's table (../shared/spec/network-and-experiments.md)."""

    experiment: str
    data: str  # "full" or "small" (the book's 100/10 subsets)
    hidden_nodes: int
    learning_rate: float
    epochs: int
    book: float


BOOK_TABLE: tuple[BookRow, ...] = (
    BookRow("small data: train 100, test 10", "small", 100, 0.3, 1, 0.6),
    BookRow("first full run", "full", 100, 0.3, 1, 0.9473),
    # performance after 1 epoch (H=100) by learning rate
    *(BookRow("learning rate", "full", 100, lr, 1, book)
      for lr, book in ((0.6, 0.9047), (0.1, 0.9523), (0.01, 0.9241), (0.2, 0.9537))),
    BookRow("epochs (lr 0.2)", "full", 100, 0.2, 2, 0.9579),
    BookRow("epochs (lr 0.1, peak)", "full", 100, 0.1, 7, 0.9628),
    # performance after 5 epochs at lr 0.1 by hidden nodes
    *(BookRow(f"hidden nodes{note}", "full", hidden, 0.1, 5, book)
      for hidden, book, note in ((5, 0.7001, ""), (10, 0.8998, ""), (200, 0.9751, " (the book's final code)"),
                                 (500, 0.9762, " (a long run)"))),
)

LEARNING_RATES = (0.01, 0.1, 0.2, 0.3, 0.6)
EPOCHS = tuple(range(1, 11))
EPOCH_CURVE_RATES = (0.2, 0.1)
HIDDEN_NODES = (5, 10, 100, 200, 500)


def book_points(seeds: list[int], full_label: str = "full") -> dict[str, list[NetworkConfig]]:
    """The configs of every experiment of the book, per seed: {"full": [...], "small": [...]}."""
    full: list[NetworkConfig] = []
    for s in seeds:
        full += [NetworkConfig(hidden_nodes=100, learning_rate=lr, epochs=1, seed=s) for lr in LEARNING_RATES]
        full += [NetworkConfig(hidden_nodes=100, learning_rate=lr, epochs=e, seed=s)
                 for lr in EPOCH_CURVE_RATES for e in EPOCHS]
        full += [NetworkConfig(hidden_nodes=h, learning_rate=0.1, epochs=5, seed=s) for h in HIDDEN_NODES]
    small = [NetworkConfig(hidden_nodes=100, learning_rate=0.3, epochs=1, seed=s) for s in seeds]
    return {full_label: list(dict.fromkeys(full)), "small": small}


