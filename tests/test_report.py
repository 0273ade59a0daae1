"""tracking.report: the reproduction's report beside the book's numbers, and its plots."""
from __future__ import annotations

from pathlib import Path

import pytest

from mynn.config import NetworkConfig
from mynn.experiments import book_points
from tracking.report import draw_plots, markdown, table_rows
from tracking.sweeps import PointResult

# ------------------------------------------------------------------------------------ markdown


def result(data: str, performance: float, seed: int, **fields) -> PointResult:
    config = NetworkConfig(seed=seed, **fields)
    return PointResult(config, data, f"pid-{data}-{config.run_name()}", f"run-{data}-{config.run_name()}",
                       "trained", performance, 0.05, [performance])


def row_cells(md: str, experiment: str, lr: str, epochs: str) -> list[str]:
    """The cells of the markdown table row of an experiment with this lr and epoch count."""
    found = []
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 12 and cells[0] == experiment and cells[3] == lr and cells[4] == epochs:
            found.append(cells)
    assert len(found) == 1, (experiment, lr, epochs, md)
    return found[0]


def test_markdown_reports_mean_std_min_max_and_whether_the_book_is_inside():
    results = [
        # small row (book 0.6): 0.5, 0.6, 0.8 -> mean 0.6333, std 0.1528 (n-1), inside
        result("small", 0.5, 0, hidden_nodes=100, learning_rate=0.3, epochs=1),
        result("small", 0.6, 1, hidden_nodes=100, learning_rate=0.3, epochs=1),
        result("small", 0.8, 2, hidden_nodes=100, learning_rate=0.3, epochs=1),
        # lr 0.6 row (book 0.9047): 0.91, 0.93 -> mean 0.92, std 0.0141, book below: no
        result("full", 0.91, 0, hidden_nodes=100, learning_rate=0.6, epochs=1),
        result("full", 0.93, 1, hidden_nodes=100, learning_rate=0.6, epochs=1),
        # H500 row (book 0.9762): one seed exactly on the book's number: inside, std 0
        result("full", 0.9762, 0, hidden_nodes=500, learning_rate=0.1, epochs=5),
        # the same config on small data must not count for a full-data row
        result("small", 0.1, 5, hidden_nodes=100, learning_rate=0.6, epochs=1),
    ]
    md = markdown(results, "full", title="T")
    assert md.startswith("# T\n")
    small = row_cells(md, "small data: train 100, test 10", "0.3", "1")
    assert small[1:] == ["small", "100", "0.3", "1", "0.6000", "0.6333", "0.1528", "0.5000", "0.8000", "3", "yes"]
    lr06 = row_cells(md, "learning rate", "0.6", "1")
    assert lr06[1:] == ["full", "100", "0.6", "1", "0.9047", "0.9200", "0.0141", "0.9100", "0.9300", "2", "no"]
    h500 = row_cells(md, "hidden nodes (a long run)", "0.1", "5")
    assert h500[5:] == ["0.9762", "0.9762", "0.0000", "0.9762", "0.9762", "1", "yes"]
    # rows without observations show n = 0 and no verdict
    first = row_cells(md, "first full run", "0.3", "1")
    assert first[10:] == ["0", "–"]
    assert "inside the observed range in 2 of 12 rows" in md
    # the numbers behind the text
    rows = {(r["row"].data, r["row"].learning_rate, r["row"].hidden_nodes): r for r in table_rows(results)}
    assert rows[("small", 0.3, 100)]["mean"] == pytest.approx((0.5 + 0.6 + 0.8) / 3)
    assert rows[("small", 0.3, 100)]["std"] == pytest.approx(0.152752523, abs=1e-9)
    assert rows[("full", 0.6, 100)]["n"] == 2 and rows[("full", 0.6, 100)]["inside"] is False


def test_markdown_uses_the_full_label_for_full_data_rows():
    results = [result("n6000-1000", 0.95, 0, hidden_nodes=100, learning_rate=0.3, epochs=1),
               result("full", 0.10, 1, hidden_nodes=100, learning_rate=0.3, epochs=1)]
    md = markdown(results, "n6000-1000")
    cells = row_cells(md, "first full run", "0.3", "1")
    assert cells[1] == "n6000-1000"
    assert cells[6:11] == ["0.9500", "0.0000", "0.9500", "0.9500", "1"]
    assert cells[11] == "no"  # the book's 0.9473 is outside [0.95, 0.95]


# ------------------------------------------------------------------------------------- plots


def test_draw_plots_writes_the_three_book_plots(tmp_path):
    points = book_points([0, 1])
    results = [result("full", 0.9 + 0.001 * c.epochs + 0.0001 * c.seed, c.seed, hidden_nodes=c.hidden_nodes,
                      learning_rate=c.learning_rate, epochs=c.epochs) for c in points["full"]]
    results += [result("small", 0.6, c.seed, hidden_nodes=100, learning_rate=0.3, epochs=1) for c in points["small"]]
    made = draw_plots(results, tmp_path / "plots")
    assert [p.name for p in made] == ["book_learning_rate.png", "book_epochs.png", "book_hidden_nodes.png"]
    for p in made:
        assert Path(p).parent == tmp_path / "plots"
        data = Path(p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, p
    assert sorted(x.name for x in (tmp_path / "plots").iterdir()) == sorted(p.name for p in made)
