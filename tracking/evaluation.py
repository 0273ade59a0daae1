"""Evaluate a trained network on the test set and log the results to its MLflow run:
the book's performance score, per-class accuracy, and the plots as PNG artifacts."""
from __future__ import annotations

import importlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric

from mynn.arrays import load_npy
from mynn.dataset import Dataset
from mynn.encoding import scale_inputs
from mynn.network import Network
from mynn.train import warm_kernels
from mynn.prepare import PreparedData
from tracking import models, store
from tracking.runs import dataset_ref, now_ms

OUTPUT_TABLE_EXAMPLES = 5  # records shown in the book's "output layer" table


@dataclass(frozen=True)
class Evaluation:
    """Scores of one network on one test set."""

    performance: float  # fraction of test records whose argmax equals the label
    per_class: list[float]  # accuracy per digit 0..9 (NaN where a digit has no records)
    records: int
    predictions_path: Path  # (m,) int64 predicted digits, .npy


def evaluate(network: Network, test: Dataset, history: list[dict], out_dir: Path,
             client: MlflowClient | None = None, run_id: str | None = None, model_uri: str | None = None,
             dataset: tuple[str, str] | None = None) -> Evaluation:
    """Score ``network`` on ``test`` in one batched pass, draw the plots into ``out_dir``
    and, given a client and run id, log metrics (``performance``, ``accuracy_digit/<d>``: one chart group in the MLflow UI)
    and artifacts (``plots/*.png``, ``output_layer.md``, ``predictions.npy``). The metrics are
    linked to the LoggedModel of ``model_uri`` and to the test ``dataset`` (its name and digest
    as logged on the run: :func:`tracking.runs.dataset_ref`), so they show on the model too."""
    from tracking import plots  # matplotlib: loaded by prefetch() during training, or now

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x = scale_inputs(test.pixels, network.config.dtype)  # (m, 784)
    outputs = network.query(x)  # (m, 10)
    predicted = np.argmax(outputs, axis=1)
    performance = float(np.mean(predicted == test.labels))
    per_class = plots.per_class_accuracy(test.labels, predicted)
    pred_path = out_dir / "predictions.npy"
    np.save(pred_path, predicted.astype(np.int64), allow_pickle=False)

    matrix = plots.confusion_matrix(test.labels, predicted)
    k = min(OUTPUT_TABLE_EXAMPLES, len(test))
    figures = {
        "confusion_matrix": plots.plot_confusion_matrix(matrix),
        "learning_curve": plots.plot_learning_curve([h["epoch"] for h in history], [h["train_mse"] for h in history],
                                                    [h["performance"] for h in history]),
        "misclassified": plots.plot_misclassified(test.pixels, test.labels, predicted),
        "output_layer": plots.plot_output_layer(outputs[:k], test.labels[:k], test.pixels[:k]),
    }
    table = plots.output_layer_table(outputs[:k], test.labels[:k])
    (out_dir / "output_layer.md").write_text(table)
    output_rows = {"label": [int(v) for v in test.labels[:k]], "predicted": [int(v) for v in predicted[:k]],
                   **{f"output_{d}": [float(v) for v in outputs[:k, d]] for d in range(10)}}

    if client is None or run_id is None:  # no run: the plots as files beside the network
        for name, fig in figures.items():
            plots.save_png(fig, out_dir / "plots" / f"{name}.png")
        (out_dir / "confusion_matrix.json").write_text(json.dumps(matrix.tolist()))
    else:
        ts = now_ms()
        link = models.linked(model_uri, dataset)
        metrics = [Metric("performance", performance, ts, 0, **link)]
        metrics += [Metric(f"accuracy_digit/{d}", float(a), ts, 0, **link) for d, a in enumerate(per_class)
                    if np.isfinite(a)]
        client.log_batch(run_id, metrics=metrics)
        for name, fig in figures.items():  # MLflow's own calls: figures, a dict, a table
            client.log_figure(run_id, fig, f"plots/{name}.png", save_kwargs={"dpi": plots.DPI})
        client.log_dict(run_id, {"labels": list(range(10)), "matrix": matrix.tolist()}, "confusion_matrix.json")
        client.log_table(run_id, output_rows, "output_layer.json")
        for name in ("output_layer.md", "predictions.npy"):
            client.log_artifact(run_id, str(out_dir / name))
    return Evaluation(performance, [float(a) for a in per_class], len(test), pred_path)


#: What evaluation and registration import on top of the training's modules.
LATE_MODULES = ("tracking.plots", "mlflow.pyfunc", "mlflow.models")


def prefetch(kernels: bool = False) -> threading.Thread:
    """Import :data:`LATE_MODULES` in a background thread (with ``kernels``, first load the
    training kernels: :func:`mynn.kernels.warm`). Started while the command waits on its servers,
    or before training, whose kernels release the GIL, the imports (matplotlib, MLflow's model
    packaging: about 1.5 s) and MLflow's first-save map of installed packages run on the other
    core instead of on the command's critical path."""
    def load() -> None:
        if kernels:
            warm_kernels()
        for name in LATE_MODULES[1:]:  # what saving a model needs first, matplotlib last
            importlib.import_module(name)
        # MLflow checks the model's requirements against every installed distribution the first
        # time a model is saved (about 1 s here); its map of them is made now, off the critical path
        from tracking.flavour import warm_requirements_map

        warm_requirements_map()
        importlib.import_module(LATE_MODULES[0])

    thread = threading.Thread(target=load, name="mynn-prefetch", daemon=True)
    thread.start()
    return thread


def evaluate_run(uri: str, run_id: str, weights_path: Path, history: list[dict], data: PreparedData,
                 model_uri: str | None = None) -> Evaluation:
    """Load the trained network and the prepared test set; evaluate and log on run ``run_id``
    (files beside the weights), the metrics linked to ``model_uri``'s LoggedModel and the test set."""
    return evaluate(Network.load(weights_path), load_npy(data.test.directory), history, Path(weights_path).parent,
                    store.client(uri), run_id, model_uri, dataset_ref(data.test, "test"))
