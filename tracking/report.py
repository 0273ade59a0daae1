"""The reproduction report: every row of the book's table beside what repeated seeds give.

For each row: the book's number, the mean, standard deviation, min and max over seeds, and
whether the book's number lies inside the observed range; plus the book's three plots
(performance against learning rate, against epochs for lr 0.2 and 0.1, against hidden
nodes) redrawn with the spread over seeds and the book's points overlaid.
"""
from __future__ import annotations

from pathlib import Path

from mynn.experiments import BOOK_TABLE, EPOCH_CURVE_RATES, HIDDEN_NODES, LEARNING_RATES, BookRow
from mynn.stats import spread
from mynn.tables import markdown_table
from tracking import plots
from tracking.sweeps import PointResult


def _observed(results: list[PointResult], data: str, **fields) -> list[float]:
    return [r.performance for r in results if r.data == data
            and all(getattr(r.config, k) == v for k, v in fields.items())]


def table_rows(results: list[PointResult], full_label: str = "full") -> list[dict]:
    """Per row of the book's table: the row, n, and (with n > 0) mean, std, min, max over seeds and
    whether the book's number lies inside the observed range."""
    rows = []
    for row in BOOK_TABLE:
        data = full_label if row.data == "full" else row.data
        obs = _observed(results, data, hidden_nodes=row.hidden_nodes, learning_rate=row.learning_rate,
                        epochs=row.epochs)
        if not obs:
            rows.append({"row": row, "n": 0})
            continue
        s = spread(obs)
        rows.append({"row": row, **s.to_dict(), "inside": bool(s.min <= row.book <= s.max)})
    return rows


def markdown(results: list[PointResult], full_label: str = "full", title: str = "Reproducing the book") -> str:
    """The report's table as markdown."""
    rows = table_rows(results, full_label)
    cells = []
    for r in rows:
        b: BookRow = r["row"]
        observed = ([f"{r[k]:.4f}" for k in ("mean", "std", "min", "max")] + [r["n"], "yes" if r["inside"] else "no"]
                    if r["n"] else ["–"] * 4 + [0, "–"])
        cells.append([b.experiment, full_label if b.data == "full" else b.data, b.hidden_nodes, f"{b.learning_rate:g}",
                      b.epochs, f"{b.book:.4f}", *observed])
    inside = sum(1 for r in rows if r.get("inside"))
    return "\n".join([f"# {title}", "",
                      f"Each configuration was trained once per seed ({len({r.config.seed for r in results})} seeds); "
                      f"data: `{full_label}` for full-data rows.", "",
                      markdown_table(["experiment", "data", "hidden", "lr", "epochs", "book", "mean", "std", "min",
                                      "max", "n", "book inside range"], cells),
                      f"The book's number lies inside the observed range in {inside} of {len(BOOK_TABLE)} rows."]) + "\n"


def draw_plots(results: list[PointResult], out_dir: Path, full_label: str = "full") -> list[Path]:
    """The book's three plots with the spread over seeds and the book's points."""
    out_dir.mkdir(parents=True, exist_ok=True)

    def groups(xfield: str, **fixed) -> dict[float, list[float]]:
        out: dict[float, list[float]] = {}
        for r in results:
            if r.data == full_label and all(getattr(r.config, k) == v for k, v in fixed.items()):
                out.setdefault(float(getattr(r.config, xfield)), []).append(r.performance)
        return out

    made = []
    lr = {x: v for x, v in groups("learning_rate", hidden_nodes=100, epochs=1).items() if x in LEARNING_RATES}
    lr_book = {b.learning_rate: b.book for b in BOOK_TABLE if b.data == "full" and b.epochs == 1 and b.hidden_nodes == 100}
    made.append(plots.save_png(plots.plot_series({"lr sweep (H=100, 1 epoch)": lr}, {"lr sweep (H=100, 1 epoch)": lr_book},
                                                 xlabel="learning rate", ylabel="performance",
                                                 title="performance vs learning rate", log_x=True),
                               out_dir / "book_learning_rate.png"))
    series, series_book = {}, {}
    for rate in EPOCH_CURVE_RATES:
        name = f"lr {rate:g}"
        series[name] = {x: v for x, v in groups("epochs", hidden_nodes=100, learning_rate=rate).items()}
        series_book[name] = {float(b.epochs): b.book for b in BOOK_TABLE
                             if b.data == "full" and b.hidden_nodes == 100 and b.learning_rate == rate}
    made.append(plots.save_png(plots.plot_series(series, series_book, xlabel="epochs", ylabel="performance",
                                                 title="performance vs epochs (H=100)"),
                               out_dir / "book_epochs.png"))
    hidden = {x: v for x, v in groups("hidden_nodes", learning_rate=0.1, epochs=5).items() if x in HIDDEN_NODES}
    hidden_book = {float(b.hidden_nodes): b.book for b in BOOK_TABLE if b.data == "full" and b.epochs == 5}
    made.append(plots.save_png(plots.plot_series({"lr 0.1, 5 epochs": hidden}, {"lr 0.1, 5 epochs": hidden_book},
                                                 xlabel="hidden nodes", ylabel="performance",
                                                 title="performance vs hidden nodes", log_x=True),
                               out_dir / "book_hidden_nodes.png"))
    return made
