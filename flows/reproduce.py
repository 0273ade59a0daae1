"""Reproduce every experiment of the book over several seeds, with a report beside its numbers.

One parent run ("reproduce"), one child per point (learning rates, two epoch curves, hidden
nodes on full MNIST; the 100/10 small-data run), points shared between experiments trained
once, the epoch curves taken from one 10-epoch training per seed and learning rate.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.task_runners import ProcessPoolTaskRunner
from pydantic import Field

from flows.params import ExperimentName
from flows.sweep_flow import DEFAULT_WORKERS, log_sweep_summary, prepare_data, run_points, start_parent
from mynn.sources import redact_url
from mynn.grid import code_version
from tracking import report
from tracking.runs import closing_run
from tracking.store import ensure_experiment, run_ui_url, tracking_uri

QUICK_TRAIN_RECORDS = 6000  # --quick: the first 6,000 training records ...
QUICK_TEST_RECORDS = 1000  # ... and the first 1,000 test records
QUICK_SEEDS = 2


@flow(name="mynn-reproduce", task_runner=ProcessPoolTaskRunner(max_workers=DEFAULT_WORKERS))
def reproduce_flow(
    seeds: Annotated[int, Field(ge=1, le=100, description="Seeds per configuration (0..seeds-1)")] = 5,
    quick: Annotated[bool, Field(description="Quick look: 2 seeds (unless set), first 6,000/1,000 records")] = False,
    source: Annotated[str, Field(description="Full MNIST: shipped, book, a folder or URL")] = "shipped",
    small_source: Annotated[str, Field(description="The book's 100/10 subsets")] = "shipped-small",
    experiment: Annotated[ExperimentName, Field(description="MLflow experiment")] = "mynn-reproduce",
) -> dict:
    """Run the book's table over ``seeds`` seeds; report, plots and child runs in MLflow."""
    t0 = time.perf_counter()
    log = get_run_logger()
    if quick and seeds == 5:
        seeds = QUICK_SEEDS
    uri = tracking_uri()
    client, experiment_id = ensure_experiment(uri, experiment)
    full = prepare_data(source, QUICK_TRAIN_RECORDS if quick else None, QUICK_TEST_RECORDS if quick else None)
    small = prepare_data(small_source)
    points = report.book_points(list(range(seeds)), full.label)
    name = f"reproduce-{seeds}seeds-{full.label}"
    parent = start_parent(client, experiment_id, name, "reproduce", {
        "seeds": seeds, "quick": quick, "source": redact_url(source), "data": full.label, "train_digest": full.train_digest,
        "test_digest": full.test_digest, "small_train_digest": small.train_digest, "code_version": code_version(),
        "points": sum(len(v) for v in points.values())})
    url = run_ui_url(uri, experiment_id, parent)
    log.info(f"{name}: {sum(len(v) for v in points.values())} points; parent run {parent}: {url}")
    with closing_run(client, parent):
        results = run_points(client, uri, experiment_id, parent, [(full, points[full.label]),
                                                                  (small, points["small"])])
        summary = log_sweep_summary(client, uri, experiment_id, parent, results, t0)
        md = report.markdown(results, full.label, title=f"Reproducing the book: {seeds} seeds, data {full.label}")
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "report.md").write_text(md)
            client.log_artifact(parent, str(Path(tmp) / "report.md"))
            for png in report.draw_plots(results, Path(tmp) / "plots", full.label):
                client.log_artifact(parent, str(png), "plots")
        wall = time.perf_counter() - t0
        client.log_metric(parent, "wall_seconds", wall)
    create_link_artifact(link=url, link_text=f"MLflow parent run {name}", key="mlflow-reproduce")
    create_markdown_artifact(key="reproduce-report", markdown=md)
    log.info(f"done in {wall:.1f} s, {summary['training_seconds_total']:.1f} s of it training (summed over workers)")
    return {"parent_run_id": parent, "parent_url": url, "report": md, "wall_seconds": wall,
            **{k: v for k, v in summary.items() if k != "summary_markdown"}}
