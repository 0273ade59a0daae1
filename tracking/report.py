"""The reproduction report: every row of the book's table beside what repeated seeds give.

For each row: the book's number, the mean, standard deviation, min and max over seeds, and
whether the book's number lies inside the observed range; plus the book's three plots
(performance against learning rate, against epochs for lr 0.2 and 0.1, against hidden
nodes) redrawn with the spread over seeds and the book's points overlaid.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mynn.config import NetworkConfig
from tracking import plots
from tracking.sweeps import PointResult


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
    BookRow("learning rate", "full", 100, 0.6, 1, 0.9047),
    BookRow("learning rate", "full", 100, 0.1, 1, 0.9523),
    BookRow("learning rate", "full", 100, 0.01, 1, 0.9241),
    BookRow("learning rate", "full", 100, 0.2, 1, 0.9537),
    BookRow("epochs (lr 0.2)", "full", 100, 0.2, 2, 0.9579),
    BookRow("epochs (lr 0.1, peak)", "full", 100, 0.1, 7, 0.9628),
    BookRow("hidden nodes", "full", 5, 0.1, 5, 0.7001),
    BookRow("hidden nodes", "full", 10, 0.1, 5, 0.8998),
    BookRow("hidden nodes (the book's final code)", "full", 200, 0.1, 5, 0.9751),
    BookRow("hidden nodes (a long run)", "full", 500, 0.1, 5, 0.9762),
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


def _observed(results: list[PointResult], data: str, **fields) -> list[float]:
    return [r.performance for r in results if r.data == data
            and all(getattr(r.config, k) == v for k, v in fields.items())]


def table_rows(results: list[PointResult], full_label: str = "full") -> list[dict]:
    rows = []
    for row in BOOK_TABLE:
        data = full_label if row.data == "full" else row.data
        obs = np.asarray(_observed(results, data, hidden_nodes=row.hidden_nodes, learning_rate=row.learning_rate,
                                   epochs=row.epochs), float)
        if len(obs) == 0:
            rows.append({"row": row, "n": 0})
            continue
        rows.append({"row": row, "n": len(obs), "mean": float(obs.mean()),
                     "std": float(obs.std(ddof=1)) if len(obs) > 1 else 0.0,
                     "min": float(obs.min()), "max": float(obs.max()),
                     "inside": bool(obs.min() <= row.book <= obs.max())})
    return rows


def markdown(results: list[PointResult], full_label: str = "full", title: str = "Reproducing the book") -> str:
    """The report's table as markdown."""
    lines = [f"# {title}", "",
             f"Each configuration was trained once per seed ({len({r.config.seed for r in results})} seeds); "
             f"data: `{full_label}` for full-data rows.", "",
             "| experiment | data | hidden | lr | epochs | book | mean | std | min | max | n | book inside range |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table_rows(results, full_label):
        b: BookRow = r["row"]
        data = full_label if b.data == "full" else b.data
        if r["n"] == 0:
            lines.append(f"| {b.experiment} | {data} | {b.hidden_nodes} | {b.learning_rate:g} | {b.epochs} | "
                         f"{b.book:.4f} | – | – | – | – | 0 | – |")
            continue
        lines.append(f"| {b.experiment} | {data} | {b.hidden_nodes} | {b.learning_rate:g} | {b.epochs} | "
                     f"{b.book:.4f} | {r['mean']:.4f} | {r['std']:.4f} | {r['min']:.4f} | {r['max']:.4f} | "
                     f"{r['n']} | {'yes' if r['inside'] else 'no'} |")
    inside = sum(1 for r in table_rows(results, full_label) if r.get("inside"))
    lines += ["", f"The book's number lies inside the observed range in {inside} of {len(BOOK_TABLE)} rows."]
    return "\n".join(lines) + "\n"


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
