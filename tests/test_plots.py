"""tracking.plots: the numbers behind the figures, and that every figure renders to a PNG
without pyplot, written atomically."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from tracking import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


def assert_png(fig: Figure, folder: Path, name: str = "fig.png") -> Path:
    """save_png writes a real, non-trivial PNG and leaves nothing else behind."""
    assert isinstance(fig, Figure)
    before = set(folder.iterdir()) if folder.exists() else set()
    out = plots.save_png(fig, folder / name)
    assert out == folder / name
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 2000
    after = set(folder.iterdir())
    assert after - before <= {out}, f"leftover files: {after - before - {out}}"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    return out


def fake_pixels(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 784), dtype=np.uint8)


# ---- numbers ----------------------------------------------------------------------------
def test_confusion_matrix_hand_example():
    labels = np.array([0, 0, 1, 1, 1, 2, 9, 9], dtype=np.uint8)
    predicted = np.array([0, 1, 1, 1, 2, 2, 9, 3])
    m = plots.confusion_matrix(labels, predicted)
    assert m.shape == (10, 10) and m.dtype == np.int64
    expected = np.zeros((10, 10), dtype=np.int64)
    expected[0, 0] = 1  # true 0 answered 0
    expected[0, 1] = 1  # true 0 answered 1: row is the truth, column the answer
    expected[1, 1] = 2
    expected[1, 2] = 1
    expected[2, 2] = 1
    expected[9, 9] = 1
    expected[9, 3] = 1
    np.testing.assert_array_equal(m, expected)
    assert m.sum() == labels.size
    np.testing.assert_array_equal(m.sum(axis=1)[[0, 1, 2, 9]], [2, 3, 1, 2])  # true counts


def test_confusion_matrix_uint8_no_overflow_and_validation():
    labels = np.full(300, 9, dtype=np.uint8)  # uint8 as loaded from the CSV; counts exceed 255
    m = plots.confusion_matrix(labels, labels)
    assert m[9, 9] == 300
    with pytest.raises(ValueError):
        plots.confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError):
        plots.confusion_matrix([0, 10], [0, 1])
    with pytest.raises(ValueError):
        plots.confusion_matrix([-1, 1], [0, 1])


def test_per_class_accuracy_missing_class_is_nan():
    labels = np.array([0, 0, 1, 1, 1, 2, 9, 9])
    predicted = np.array([0, 1, 1, 1, 2, 2, 9, 3])
    acc = plots.per_class_accuracy(labels, predicted)
    assert acc.shape == (10,) and acc.dtype == np.float64
    np.testing.assert_allclose(acc[[0, 1, 2, 9]], [0.5, 2 / 3, 1.0, 0.5])
    assert np.all(np.isnan(acc[[3, 4, 5, 6, 7, 8]]))


def test_output_layer_table_header_and_argmax():
    outputs = np.array([
        [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.97, 0.08, 0.09, 0.10],
        [0.80, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1234],
    ])
    labels = np.array([6, 3])
    table = plots.output_layer_table(outputs, labels)
    lines = table.strip().splitlines()
    assert lines[0] == "| record | label | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | answer |"
    assert set(lines[1].replace("|", "").replace("-", "").replace(":", "")) <= {""}
    assert len(lines) == 4
    row0 = [c.strip() for c in lines[2].strip("|").split("|")]
    row1 = [c.strip() for c in lines[3].strip("|").split("|")]
    assert row0[1] == "6" and row0[-1] == "6" and row0[2 + 6] == "0.970"
    assert row1[1] == "3" and row1[-1] == "0" and row1[2 + 9] == "0.123"


# ---- figures ----------------------------------------------------------------------------
def test_plot_confusion_matrix_png(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 500)
    predicted = np.where(rng.random(500) < 0.9, labels, rng.integers(0, 10, 500))
    fig = plots.plot_confusion_matrix(plots.confusion_matrix(labels, predicted))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    assert "accuracy" in ax.get_title()
    assert len(ax.texts) == 100
    assert_png(fig, tmp_path)


def test_plot_learning_curve_png_skips_none(tmp_path):
    fig = plots.plot_learning_curve([1, 2, 3, 4], [0.05, 0.03, 0.025, 0.02],
                                    [None, 0.94, None, 0.955])
    perf_line = fig.axes[1].get_lines()[0]
    np.testing.assert_array_equal(perf_line.get_xdata(), [2, 4])
    assert_png(fig, tmp_path)
    with pytest.raises(ValueError):
        plots.plot_learning_curve([1, 2], [0.1], [None, None])


def test_plot_learning_curve_without_any_performance(tmp_path):
    assert_png(plots.plot_learning_curve([1], [0.04], [None]), tmp_path)


def test_plot_misclassified_grid(tmp_path):
    n = 60
    labels = np.arange(n) % 10
    predicted = labels.copy()
    predicted[::2] = (predicted[::2] + 1) % 10  # 30 wrong
    pixels = fake_pixels(n)
    fig = plots.plot_misclassified(pixels, labels, predicted)
    (ax,) = [ax for ax in fig.axes if ax.images]  # one mosaic of the first 25 wrong records, 5x5
    wrong = np.flatnonzero(labels != predicted)[:25]
    captions = [t.get_text() for t in ax.texts]
    assert captions[0::2] == [f"pred {predicted[i]} / true {labels[i]}" for i in wrong]
    assert captions[1::2] == [f"#{i}" for i in wrong]
    mosaic = np.asarray(ax.images[0].get_array())
    side, gap = 28, 12
    for n_, i in enumerate(wrong):  # each digit where its caption is, pixel for pixel
        r, c = divmod(n_, 5)
        top, left = gap + r * (side + gap), c * (side + gap) + gap // 2
        assert np.array_equal(mosaic[top:top + side, left:left + side], pixels[i].reshape(side, side))
    assert_png(fig, tmp_path)


def test_plot_misclassified_few_and_none(tmp_path):
    labels = np.array([1, 2, 3, 4])
    predicted = np.array([1, 7, 3, 4])
    fig = plots.plot_misclassified(fake_pixels(4), labels, predicted)
    assert [t.get_text() for ax in fig.axes if ax.images for t in ax.texts] == ["pred 7 / true 2", "#1"]
    assert_png(fig, tmp_path, "few.png")

    fig = plots.plot_misclassified(fake_pixels(4), labels, labels)
    assert any("no misclassified records" in t.get_text() for ax in fig.axes for t in ax.texts)
    assert_png(fig, tmp_path, "none.png")


def test_plot_output_layer_png(tmp_path):
    rng = np.random.default_rng(2)
    outputs = rng.random((6, 10))
    labels = rng.integers(0, 10, 6)
    fig = plots.plot_output_layer(outputs, labels, fake_pixels(6))
    assert sum(1 for ax in fig.axes if ax.images) == 4  # at most 4 examples
    bars = [ax for ax in fig.axes if ax.patches]
    assert len(bars) == 4
    heights = [p.get_height() for p in bars[0].patches]
    colours = [p.get_facecolor() for p in bars[0].patches]
    top = int(np.argmax(heights))
    assert top == int(np.argmax(outputs[0]))
    assert sum(c != colours[(top + 1) % 10] for c in colours) == 1  # only the answer stands out
    assert colours[top] != colours[(top + 1) % 10]
    assert_png(fig, tmp_path)


def test_plot_series_one_series_with_the_book_and_a_log_axis(tmp_path):
    groups = {0.1: [0.94, 0.95, 0.945], 0.2: [0.952, 0.953], 0.3: [0.95], 0.6: [0.9, float("nan")]}
    fig = plots.plot_series({"runs": groups}, {"runs": {0.1: 0.9473, 0.3: 0.9531}}, "learning rate", "performance",
                            "performance vs learning rate")
    assert {"book runs", "runs min..max"} <= set(fig.axes[0].get_legend_handles_labels()[1])
    assert_png(fig, tmp_path, "lr.png")

    fig = plots.plot_series({"h": {5: [0.7, 0.72], 50: [0.95], 500: [0.97, 0.975]}}, None,
                            "hidden nodes", "performance", "hidden", log_x=True)
    assert fig.axes[0].get_xscale() == "log"
    assert_png(fig, tmp_path, "hidden.png")
    with pytest.raises(ValueError, match="positive"):
        plots.plot_series({"x": {0: [0.1], 1: [0.2]}}, None, "x", "y", "t", log_x=True)


def test_plot_series_two_series_with_book(tmp_path):
    series = {
        "lr 0.2": {1: [0.95, 0.951], 2: [0.955, 0.957], 5: [0.958, 0.96], 7: [0.955]},
        "lr 0.1": {1: [0.948], 2: [0.956, 0.955], 5: [0.962, 0.963], 7: [0.96]},
    }
    book = {"lr 0.2": {1: 0.95, 5: 0.96}, "lr 0.1": {5: 0.963, 7: 0.962}}
    fig = plots.plot_series(series, book, "epochs", "performance", "epochs")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "book lr 0.2" in labels and "book lr 0.1" in labels
    assert any(label.startswith("lr 0.2") for label in labels)
    assert any(label.startswith("lr 0.1") for label in labels)
    assert_png(fig, tmp_path)


# ---- save_png ---------------------------------------------------------------------------
def test_save_png_replaces_and_creates_folders(tmp_path):
    target = tmp_path / "deep" / "er" / "x.png"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    fig = plots.plot_learning_curve([1, 2], [0.1, 0.05], [0.9, 0.95])
    assert_png(fig, target.parent, "x.png")
    assert plots.save_png(fig, tmp_path / "new" / "y.png").read_bytes()[:8] == PNG_MAGIC
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_save_png_failure_leaves_no_temp_file(tmp_path):
    class Broken(Figure):
        def savefig(self, *args, **kwargs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        plots.save_png(Broken(), tmp_path / "z.png")
    assert list(tmp_path.iterdir()) == []


# ---- no pyplot --------------------------------------------------------------------------
def test_import_does_not_load_pyplot():
    code = (
        "import sys\n"
        "import tracking.plots as p\n"
        "import numpy as np\n"
        "f = p.plot_confusion_matrix(p.confusion_matrix(np.arange(10), np.arange(10)))\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_weight_pictures_show_each_hidden_node_as_its_own_28x28_tile_and_each_digit_as_a_row():
    from tracking.images import hidden_weights_image, output_weights_image

    rng = np.random.default_rng(0)
    wih = rng.normal(size=(5, 784))
    wih[3] = 0.0  # a node with no weights: mid-grey, not a division by zero
    img = hidden_weights_image(wih)  # 5 tiles: 3 columns, 2 rows, 1-pixel gaps
    assert img.dtype == np.uint8 and img.shape == (2 * 29 - 1, 3 * 29 - 1)
    tile = img[0:28, 29:57].astype(float)  # node 1, scaled by its own largest magnitude
    expected = np.clip(np.rint(127.5 + 127.5 * wih[1].reshape(28, 28) / np.abs(wih[1]).max()), 0, 255)
    assert np.array_equal(tile, expected)
    assert (img[29:57, 0:28] == 128).all()  # node 3
    assert (img[28, :] == 255).all() and (img[29:, 58:] == 255).all()  # gaps and the unused sixth tile
    who = rng.normal(size=(10, 200))
    out = output_weights_image(who, cell=4)
    assert out.shape == (40, 400) and (out[4:8, 0:2] == out[4, 0]).all()  # digit 1's first weight: a 4x2 block
    assert np.argmax(out[::4, ::2].reshape(10, 200), axis=1).tolist() == np.argmax(who, axis=1).tolist()
