"""mynn.experiments: the book's table (checked against the spec, written out independently) and
the points that reproduce every experiment of it."""
from __future__ import annotations

from collections import Counter

from mynn import experiments
from mynn.config import NetworkConfig
from mynn.experiments import BOOK_TABLE, book_points

# The table of ../shared/spec/network-and-experiments.md, "What the book reports", written
# out here independently: (data, hidden, learning rate, epochs, reported performance).
SPEC_TABLE = [
    ("small", 100, 0.3, 1, 0.6),
    ("full", 100, 0.3, 1, 0.9473),
    ("full", 100, 0.6, 1, 0.9047),
    ("full", 100, 0.1, 1, 0.9523),
    ("full", 100, 0.01, 1, 0.9241),
    ("full", 100, 0.2, 1, 0.9537),
    ("full", 100, 0.2, 2, 0.9579),
    ("full", 100, 0.1, 7, 0.9628),
    ("full", 5, 0.1, 5, 0.7001),
    ("full", 10, 0.1, 5, 0.8998),
    ("full", 200, 0.1, 5, 0.9751),
    ("full", 500, 0.1, 5, 0.9762),
]


def test_book_table_has_the_twelve_rows_of_the_spec():
    assert len(BOOK_TABLE) == 12
    got = [(r.data, r.hidden_nodes, r.learning_rate, r.epochs, r.book) for r in BOOK_TABLE]
    assert got == SPEC_TABLE
    assert all(r.experiment for r in BOOK_TABLE)


# -------------------------------------------------------------------------------- book_points


def expected_full_points(seed: int) -> set[NetworkConfig]:
    lr_sweep = {NetworkConfig(hidden_nodes=100, learning_rate=lr, epochs=1, seed=seed)
                for lr in (0.01, 0.1, 0.2, 0.3, 0.6)}
    epochs = {NetworkConfig(hidden_nodes=100, learning_rate=lr, epochs=e, seed=seed)
              for lr in (0.2, 0.1) for e in range(1, 11)}
    hidden = {NetworkConfig(hidden_nodes=h, learning_rate=0.1, epochs=5, seed=seed) for h in (5, 10, 100, 200, 500)}
    return lr_sweep | epochs | hidden


def test_book_points_cover_every_experiment_per_seed_without_duplicates():
    points = book_points(seeds=[0, 1])
    assert set(points) == {"full", "small"}
    full, small = points["full"], points["small"]
    assert len(full) == len(set(full))  # no duplicates
    # per seed: 5 learning rates + 2 x 10 epochs + 5 hidden sizes, less the 3 points two
    # experiments share (lr 0.1 E1, lr 0.2 E1 in the lr sweep and the curves; H100 lr 0.1 E5
    # in the curve and the hidden-node sweep): 27
    assert len(full) == 2 * 27
    assert set(full) == expected_full_points(0) | expected_full_points(1)
    assert Counter(c.seed for c in full) == {0: 27, 1: 27}
    assert small == [NetworkConfig(hidden_nodes=100, learning_rate=0.3, epochs=1, seed=s) for s in (0, 1)]
    # every config is the book's rule
    assert all(c.is_book_rule for c in full + small)
    # every full-data row of the book's table is among the points, for every seed
    for row in BOOK_TABLE:
        for seed in (0, 1):
            c = NetworkConfig(hidden_nodes=row.hidden_nodes, learning_rate=row.learning_rate, epochs=row.epochs,
                              seed=seed)
            assert c in points[row.data], row


def test_book_points_use_the_full_label_given():
    points = book_points([3], "n6000-1000")
    assert set(points) == {"n6000-1000", "small"}
    assert set(points["n6000-1000"]) == expected_full_points(3)


def test_report_constants_match_the_book_experiments():
    assert experiments.LEARNING_RATES == (0.01, 0.1, 0.2, 0.3, 0.6)
    assert experiments.EPOCHS == tuple(range(1, 11))
    assert experiments.HIDDEN_NODES == (5, 10, 100, 200, 500)
