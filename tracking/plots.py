"""Figures for MLflow: pure functions that build matplotlib figures and save them as PNG.

Nothing here touches ``matplotlib.pyplot`` or any other global figure state: every function
builds a fresh :class:`matplotlib.figure.Figure` attached to its own Agg canvas and returns
it, so the figures are safe to build in worker threads and processes, and nothing needs to
be closed afterwards (a figure is freed when the last reference to it goes).

Conventions: ``labels`` and ``predicted`` are integer digit arrays of shape (n,) with values
0..9; ``pixels`` are raw MNIST rows of shape (n, 784), 0..255 (uint8); ``outputs`` are the
network's ten output values per record, shape (k, 10). Test performance is the book's
fraction of correct answers, 0..1.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from mynn.files import AtomicWrite
from mynn.tables import markdown_table

__all__ = [
    "N_CLASSES",
    "confusion_matrix",
    "per_class_accuracy",
    "plot_confusion_matrix",
    "plot_learning_curve",
    "plot_misclassified",
    "output_layer_table",
    "plot_output_layer",
    "plot_series",
    "save_png",
]

N_CLASSES = 10
IMAGE_SIDE = 28
DPI = 100

_HIGHLIGHT = "tab:orange"
_WRONG = "tab:red"
_NEUTRAL = "0.65"


# ---- helpers ----------------------------------------------------------------------------
def _new_figure(width: float, height: float, margins: Mapping[str, float] | None = None) -> Figure:
    """A fresh figure on its own Agg canvas (no pyplot, no global registry). With ``margins``
    (``subplots_adjust`` arguments) its layout is fixed; else matplotlib's constrained layout
    places everything (it costs a few tenths of a second per figure: the main job's figures
    have fixed margins)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout=None if margins else "constrained")
    if margins:
        fig.subplots_adjust(**margins)
    FigureCanvasAgg(fig)
    return fig


def _digits(values, name: str) -> np.ndarray:
    """``values`` as an int64 array of shape (n,) with every entry in 0..9."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold whole digits 0..9")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must be integer digits 0..9, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.min() < 0 or out.max() >= N_CLASSES:
        raise ValueError(f"{name} must lie in 0..9, got {out.min()}..{out.max()}")
    return out


def _pair(labels, predicted) -> tuple[np.ndarray, np.ndarray]:
    lab = _digits(labels, "labels")
    pred = _digits(predicted, "predicted")
    if lab.shape != pred.shape:
        raise ValueError(f"labels {lab.shape} and predicted {pred.shape} differ in length")
    return lab, pred


def _pixel_rows(pixels, n: int) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.shape != (n, IMAGE_SIDE * IMAGE_SIDE):
        raise ValueError(f"pixels must have shape ({n}, 784), got {arr.shape}")
    return arr


def _show_digit(ax: Axes, row: np.ndarray) -> None:
    """One 784-pixel row as a 28x28 grey image, ink dark on white as in the book."""
    image = np.asarray(row).reshape(IMAGE_SIDE, IMAGE_SIDE)
    limits = {"vmin": 0, "vmax": 255} if image.dtype.kind in "iu" else {}
    ax.imshow(image, cmap="Greys", interpolation="nearest", **limits)
    ax.set_xticks([])
    ax.set_yticks([])


def _message_figure(text: str, title: str | None = None) -> Figure:
    fig = _new_figure(4, 2.5)
    ax = fig.subplots()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, transform=ax.transAxes)
    ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


# ---- saving -----------------------------------------------------------------------------
def save_png(fig: Figure, path: str | os.PathLike[str], dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically and return the path.

    The image goes to a temporary file in the same folder, is flushed to disk and then
    renamed over ``path`` (:class:`mynn.files.AtomicWrite`), so readers never see a
    half-written file. The temporary file is removed if anything fails. Missing parent
    folders are created; the file gets the usual mode (0o666 less the umask).
    The figure is left as it is (nothing is closed; there is no global state to close).
    """
    target = Path(path)
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with AtomicWrite(target) as tmp, open(tmp, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return target


# ---- 1. confusion matrix ----------------------------------------------------------------
def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Counts of (true, predicted) pairs.

    Args:
        labels: true digits, shape (n,), values 0..9.
        predicted: the network's answers, shape (n,), values 0..9.

    Returns:
        int64 array of shape (10, 10): ``matrix[t, p]`` is the number of records whose
        true label is ``t`` and whose answer is ``p`` (rows true, columns predicted).
    """
    lab, pred = _pair(labels, predicted)
    flat = np.bincount(lab * N_CLASSES + pred, minlength=N_CLASSES * N_CLASSES)
    return flat.reshape(N_CLASSES, N_CLASSES).astype(np.int64)


def plot_confusion_matrix(matrix: np.ndarray, title: str = "confusion matrix") -> Figure:
    """Heat map of a (10, 10) confusion matrix (rows true, columns predicted).

    Each cell shows its count; the title gives the overall accuracy (trace / total).
    """
    m = np.asarray(matrix)
    if m.shape != (N_CLASSES, N_CLASSES):
        raise ValueError(f"matrix must have shape (10, 10), got {m.shape}")
    total = int(m.sum())
    accuracy = float(np.trace(m)) / total if total else float("nan")
    fig = _new_figure(7.0, 6.0, {"left": 0.09, "right": 0.9, "bottom": 0.08, "top": 0.94})
    ax = fig.subplots()
    im = ax.imshow(m, cmap="Blues", interpolation="nearest", vmin=0)
    fig.colorbar(im, ax=ax, shrink=0.8, label="records", fraction=0.05, pad=0.03)
    ticks = np.arange(N_CLASSES)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.xaxis.set_ticks_position("bottom")
    threshold = m.max() / 2.0 if m.max() > 0 else 1.0
    fontsize = 8 if m.max() >= 1000 else 9
    for t in range(N_CLASSES):
        for p in range(N_CLASSES):
            count = m[t, p]
            ax.text(p, t, f"{count:g}" if m.dtype.kind == "f" else str(int(count)),
                    ha="center", va="center", fontsize=fontsize,
                    color="white" if count > threshold else "black")
    acc_text = f"{accuracy:.4f}" if total else "n/a"
    ax.set_title(f"{title}: accuracy {acc_text} ({int(np.trace(m))}/{total})")
    return fig


# ---- 2. per-class accuracy --------------------------------------------------------------
def per_class_accuracy(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Fraction of each true digit answered correctly.

    Args:
        labels: true digits, shape (n,).
        predicted: answers, shape (n,).

    Returns:
        float64 array of shape (10,): entry ``d`` is correct/records for true digit ``d``,
        NaN for a digit with no records.
    """
    m = confusion_matrix(labels, predicted)
    rows = m.sum(axis=1)
    out = np.full(N_CLASSES, np.nan, dtype=np.float64)
    has = rows > 0
    out[has] = np.diag(m)[has] / rows[has]
    return out


# ---- 3. learning curve ------------------------------------------------------------------
def plot_learning_curve(
    epochs: Sequence[int],
    train_mse: Sequence[float],
    performance: Sequence[float | None],
    title: str = "learning curve",
) -> Figure:
    """Two stacked panels sharing the epoch axis.

    Args:
        epochs: epoch numbers, length e (e.g. 1..E).
        train_mse: training mean squared error per epoch, length e.
        performance: test performance (fraction correct) per epoch, length e; None entries
            (no test set evaluated) are skipped.
    """
    ep = [int(e) for e in epochs]
    if not (len(ep) == len(train_mse) == len(performance)):
        raise ValueError("epochs, train_mse and performance must have the same length, got "
                         f"{len(ep)}, {len(train_mse)}, {len(performance)}")
    fig = _new_figure(6.5, 6.0, {"left": 0.13, "right": 0.97, "bottom": 0.08, "top": 0.95, "hspace": 0.08})
    ax_mse, ax_perf = fig.subplots(2, 1, sharex=True)
    ax_mse.plot(ep, [float(v) for v in train_mse], marker="o", color="tab:blue")
    ax_mse.set_ylabel("training MSE")
    ax_mse.set_title(title)
    ax_mse.grid(True, alpha=0.3)

    pts = [(e, float(p)) for e, p in zip(ep, performance) if p is not None]
    if pts:
        px, py = zip(*pts)
        ax_perf.plot(px, py, marker="s", color="tab:green")
        best = int(np.nanargmax(py)) if np.any(np.isfinite(py)) else None
        if best is not None:
            ax_perf.annotate(f"{py[best]:.4f}", (px[best], py[best]), textcoords="offset points",
                             xytext=(0, 6), ha="center", fontsize=8)
    else:
        ax_perf.text(0.5, 0.5, "no test performance recorded", ha="center", va="center",
                     transform=ax_perf.transAxes)
    ax_perf.margins(y=0.15)
    ax_perf.set_ylabel("test performance")
    ax_perf.set_xlabel("epoch")
    ax_perf.grid(True, alpha=0.3)
    ax_perf.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ep:
        ax_perf.set_xlim(min(ep) - 0.5, max(ep) + 0.5)
    return fig


# ---- 4. misclassified digits ------------------------------------------------------------
def plot_misclassified(
    pixels: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    max_images: int = 25,
) -> Figure:
    """Grid of the first misclassified records, in record order.

    Args:
        pixels: raw rows, shape (n, 784), 0..255 uint8.
        labels: true digits, shape (n,).
        predicted: answers, shape (n,).
        max_images: at most this many images; the grid has ceil(sqrt(max_images)) columns
            (5x5 for the default 25).

    Each image is titled ``"pred P / true T"`` and carries its record index below it.
    With nothing misclassified the figure says "no misclassified records".
    """
    if max_images < 1:
        raise ValueError(f"max_images must be at least 1, got {max_images}")
    lab, pred = _pair(labels, predicted)
    rows = _pixel_rows(pixels, lab.size)
    wrong = np.flatnonzero(lab != pred)
    if wrong.size == 0:
        return _message_figure("no misclassified records", f"misclassified: 0 of {lab.size}")
    shown = wrong[:max_images]
    ncols = min(shown.size, math.ceil(math.sqrt(max_images)))
    nrows = math.ceil(shown.size / ncols)
    # one mosaic image (one axes, not one per digit: a tenth of the drawing time), a white gap
    # of ``gap`` pixels around each 28x28 digit for its caption above and its index below
    side, gap = IMAGE_SIDE, 12
    cell = side + gap
    mosaic = np.zeros((nrows * cell + gap, ncols * cell), dtype=np.float64)
    for n, i in enumerate(shown):
        r, c = divmod(n, ncols)
        top, left = gap + r * cell, c * cell + gap // 2
        mosaic[top:top + side, left:left + side] = rows[i].reshape(side, side)
    fig = _new_figure(1.6 * ncols + 0.4, 1.75 * nrows + 0.6, {"left": 0.01, "right": 0.99, "bottom": 0.01,
                                                                "top": 1 - 0.5 / (1.75 * nrows + 0.6)})
    ax = fig.subplots()
    ax.imshow(mosaic, cmap="Greys", interpolation="nearest", vmin=0, vmax=255, aspect="auto")
    ax.set_axis_off()
    for n, i in enumerate(shown):
        r, c = divmod(n, ncols)
        x, y = c * cell + gap // 2 + side / 2, gap + r * cell
        ax.text(x, y - 1.5, f"pred {pred[i]} / true {lab[i]}", ha="center", va="bottom", fontsize=9)
        ax.text(x, y + side + 0.5, f"#{i}", ha="center", va="top", fontsize=7)
    fig.suptitle(f"first {shown.size} of {wrong.size} misclassified (of {lab.size} records)")
    return fig


# ---- 5. the output layer ----------------------------------------------------------------
def _outputs_and_labels(outputs, labels) -> tuple[np.ndarray, np.ndarray]:
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim != 2 or out.shape[1] != N_CLASSES:
        raise ValueError(f"outputs must have shape (k, 10), got {out.shape}")
    lab = _digits(labels, "labels")
    if lab.size != out.shape[0]:
        raise ValueError(f"outputs has {out.shape[0]} rows but labels has {lab.size}")
    return out, lab


def output_layer_table(outputs: np.ndarray, labels: np.ndarray) -> str:
    """The book's "output layer" table as markdown.

    Args:
        outputs: the ten output values per example record, shape (k, 10).
        labels: true digits, shape (k,).

    Returns:
        A markdown table with one row per record: its index, its true label, the ten
        output values (3 decimals) and the answer (the index of the largest output).
    """
    out, lab = _outputs_and_labels(outputs, labels)
    header = ["record", "label", *(str(d) for d in range(N_CLASSES)), "answer"]
    rows = [[i, int(t), *(f"{v:.3f}" for v in row), int(np.argmax(row))] for i, (row, t) in enumerate(zip(out, lab))]
    return markdown_table(header, rows, align="right")


def plot_output_layer(
    outputs: np.ndarray,
    labels: np.ndarray,
    pixels: np.ndarray,
    max_examples: int = 4,
) -> Figure:
    """For each of the first ``max_examples`` (4) records: the digit and its output values.

    Args:
        outputs: output values, shape (k, 10).
        labels: true digits, shape (k,).
        pixels: raw rows, shape (k, 784), 0..255.

    Each record gets a row: the 28x28 image on the left, a bar chart of the ten outputs on
    the right with the answer (argmax) highlighted (orange when right, red when wrong).
    """
    out, lab = _outputs_and_labels(outputs, labels)
    rows = _pixel_rows(pixels, lab.size)
    k = min(lab.size, max_examples)
    if k == 0:
        return _message_figure("no records", "output layer")
    height = 1.9 * k + 0.5
    fig = _new_figure(7.0, height, {"left": 0.03, "right": 0.98, "bottom": 0.45 / height, "top": 1 - 0.55 / height,
                                    "hspace": 0.55, "wspace": 0.2})
    axes = fig.subplots(k, 2, squeeze=False, width_ratios=[1, 3])
    digits = np.arange(N_CLASSES)
    for r in range(k):
        ax_img, ax_bar = axes[r]
        answer = int(np.argmax(out[r]))
        _show_digit(ax_img, rows[r])
        ax_img.set_title(f"true {lab[r]}", fontsize=9)
        colours = [_NEUTRAL] * N_CLASSES
        colours[answer] = _HIGHLIGHT if answer == lab[r] else _WRONG
        ax_bar.bar(digits, out[r], color=colours)
        ax_bar.set_xticks(digits)
        top = max(1.0, float(np.nanmax(out[r])) * 1.05) if np.any(np.isfinite(out[r])) else 1.0
        ax_bar.set_ylim(0.0, top)
        ax_bar.set_ylabel("output")
        ax_bar.set_title(f"answer {answer} ({out[r, answer]:.3f})", fontsize=9)
        ax_bar.grid(True, axis="y", alpha=0.3)
    axes[-1][1].set_xlabel("output node (digit)")
    fig.suptitle("output layer")
    return fig


# ---- 6. metrics against a parameter -----------------------------------------------------
Groups = Mapping[float, Sequence[float]]


def _as_groups(x_values: Sequence[float], groups) -> list[tuple[float, np.ndarray]]:
    """(x, finite observations) pairs in the order of ``x_values``."""
    xs = [float(x) for x in x_values]
    if isinstance(groups, Mapping):
        lookup = {float(k): v for k, v in groups.items()}
        obs = [lookup.get(x, []) for x in xs]
    else:
        obs = list(groups)
        if len(obs) != len(xs):
            raise ValueError(f"{len(xs)} x values but {len(obs)} groups of observations")
    out = []
    for x, values in zip(xs, obs):
        arr = np.asarray(values if values is not None else [], dtype=np.float64).ravel()
        out.append((x, arr[np.isfinite(arr)]))
    return out


def _draw_series(ax: Axes, pairs: list[tuple[float, np.ndarray]], colour, label: str) -> None:
    """Faint dots per observation, min..max band, mean line with std error bars."""
    pairs = [(x, v) for x, v in pairs if v.size]
    if not pairs:
        return
    xs = np.array([x for x, _ in pairs])
    order = np.argsort(xs)
    xs = xs[order]
    vals = [pairs[i][1] for i in order]
    means = np.array([v.mean() for v in vals])
    stds = np.array([v.std(ddof=1) if v.size > 1 else 0.0 for v in vals])
    lows = np.array([v.min() for v in vals])
    highs = np.array([v.max() for v in vals])
    dot_x = np.concatenate([np.full(v.size, x) for x, v in zip(xs, vals)])
    dot_y = np.concatenate(vals)
    ax.scatter(dot_x, dot_y, s=12, color=colour, alpha=0.3, linewidths=0, zorder=2)
    if len(xs) > 1:
        ax.fill_between(xs, lows, highs, color=colour, alpha=0.12, linewidth=0, zorder=1,
                        label=f"{label} min..max" if label else "min..max")
    else:
        ax.vlines(xs, lows, highs, color=colour, alpha=0.4, linewidth=6, zorder=1,
                  label=f"{label} min..max" if label else "min..max")
    ax.errorbar(xs, means, yerr=stds, color=colour, marker="o", markersize=5, capsize=4,
                linewidth=1.5, zorder=3,
                label=f"{label} mean ± std" if label else "mean ± std")


def _draw_book(ax: Axes, points: Mapping[float, float] | None, colour, label: str) -> None:
    if not points:
        return
    bx = np.array([float(k) for k in points])
    by = np.array([float(points[k]) for k in points])
    order = np.argsort(bx)
    ax.plot(bx[order], by[order], linestyle="none", marker="*", markersize=13, color=colour,
            markeredgecolor="black", markeredgewidth=0.6, zorder=4, label=label)


def _finish_axes(ax: Axes, all_x: list[float], xlabel: str, ylabel: str, title: str,
                 log_x: bool) -> None:
    if log_x:
        if any(x <= 0 for x in all_x):
            raise ValueError("log_x needs positive x values")
        ax.set_xscale("log")
    distinct = sorted(set(all_x))
    if 0 < len(distinct) <= 12:
        ax.set_xticks(distinct)
        ax.set_xticklabels([f"{x:g}" for x in distinct])
        if log_x:
            ax.xaxis.set_minor_formatter(NullFormatter())
    elif not log_x and distinct and all(float(x).is_integer() for x in distinct):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def plot_series(
    series: Mapping[str, Groups],
    book: Mapping[str, Mapping[float, float]] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    log_x: bool = False,
) -> Figure:
    """Several series of repeated observations on one axes (e.g. epochs at lr 0.2 and 0.1).

    Args:
        series: ``{name: {x: [values...]}}``; each series gets its own colour and is drawn
            as dots per observation, a min..max band and the mean with std error bars.
        book: ``{name: {x: value}}``, the book's points per series, drawn as stars in the
            series' colour and labelled "book <name>". Names not in ``series`` get a
            colour of their own.
    """
    fig = _new_figure(7.5, 5.0)
    ax = fig.subplots()
    colours = [f"C{i}" for i in range(10)]
    names = list(series) + [n for n in (book or {}) if n not in series]
    colour_of = {name: colours[i % len(colours)] for i, name in enumerate(names)}
    all_x: list[float] = []
    for name, groups in series.items():
        pairs = _as_groups(sorted(float(k) for k in groups), groups)
        _draw_series(ax, pairs, colour_of[name], str(name))
        all_x += [x for x, v in pairs if v.size]
    for name, points in (book or {}).items():
        _draw_book(ax, points, colour_of[name], f"book {name}")
        all_x += [float(k) for k in points]
    _finish_axes(ax, all_x, xlabel, ylabel, title, log_x)
    return fig
