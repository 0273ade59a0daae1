"""What a sweep's parent run shows: the table of points, the best point, counts, timing, plots.

``log_summary`` serves ``mynn sweep`` and ``mynn reproduce``; ``log_report`` adds the
reproduction's report beside the book's numbers (:mod:`tracking.report`).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import tempfile
import time
from pathlib import Path

from mynn.config import NetworkConfig
from mynn.stats import spread
from mynn.tables import markdown_table
from tracking import compare, plots, report, store
from tracking.runs import log_metrics
from tracking.sweeps import PointResult

NUMERIC_FIELDS = ("hidden_nodes", "learning_rate", "epochs", "batch_size")  # plotted against performance


def table(results: list[PointResult]) -> tuple[str, str]:
    """The sweep's summary as (CSV, markdown), one row per point; the markdown shows the fields
    that vary, the performance and the origin."""
    rows = [r.row() for r in results]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    varied = [k for k in rows[0] if k not in ("run_id", "train_mse", "training_seconds")
              and (k in ("performance", "origin") or len({str(r[k]) for r in rows}) > 1)]
    ordered = sorted(rows, key=lambda r: [str(r[k]) for k in varied if k not in ("performance", "origin")])
    md = markdown_table(varied, [[f"{r[k]:.4f}" if k == "performance" else r[k] for k in varied] for r in ordered])
    return buf.getvalue(), md


def log_summary(uri: str, experiment_id: str, parent_run_id: str, results: list[PointResult],
                wall_start: float) -> dict:
    """Summary table (CSV, markdown), best point (by mean over seeds), origin counts, timing and
    a plot of performance against each numeric field that varies, on the parent run."""
    csv_text, md = table(results)
    groups: dict[tuple, list[PointResult]] = {}
    for r in results:
        groups.setdefault((r.data, dataclasses.replace(r.config, seed=0)), []).append(r)
    best_key, best = max(groups.items(), key=lambda kv: spread([p.performance for p in kv[1]]).mean)
    best_mean = spread([p.performance for p in best]).mean
    counts = {k: sum(r.origin.startswith(k) for r in results) for k in ("trained", "derived", "reused")}
    training_seconds = sum(r.training_seconds for r in results)
    wall = time.perf_counter() - wall_start
    log_metrics(uri, parent_run_id, {
        "best_mean_performance": best_mean, "points": len(results), "trained_points": counts["trained"],
        "derived_points": counts["derived"], "reused_points": counts["reused"],
        "training_seconds_total": training_seconds, "wall_seconds": wall})
    best_name = best_key[1].run_name().replace("-s0", "", 1) + f" ({best_key[0]})"  # keeps -f32, -b8sum, -exact
    client = store.client(uri)
    client.set_tag(parent_run_id, "mynn.best_point", best_name)
    prefect = client.get_run(parent_run_id).data.tags.get("prefect.flow_run_url")
    client.set_tag(parent_run_id, "mlflow.note.content", (  # the run's description in the MLflow UI
        f"Best: **{best_name}**, mean performance {best_mean:.4f}; {len(results)} points ({counts['trained']} "
        f"trained, {counts['derived']} derived, {counts['reused']} reused), {wall:.0f} s."
        + (f" Prefect: [the flow run]({prefect})." if prefect else "") + f"\n\n{md}"))
    rows = [r.row() for r in results]
    client.log_table(parent_run_id, {k: [row[k] for row in rows] for k in rows[0]}, "summary.json")  # a table in the UI
    client.log_dict(parent_run_id, {"point": best_name, "mean_performance": best_mean,
                                    "runs": [p.run_id for p in best]}, "best.json")
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        (tmpd / "summary.csv").write_text(csv_text)
        (tmpd / "summary.md").write_text(md)
        for name in ("summary.csv", "summary.md"):
            client.log_artifact(parent_run_id, str(tmpd / name))
        varied = [f for f in NetworkConfig.__dataclass_fields__ if f != "seed"
                  and len({getattr(r.config, f) for r in results}) > 1]
        for f in (f for f in varied if f in NUMERIC_FIELDS):
            others = [o for o in varied if o != f]
            comp = compare.compare(client, [experiment_id], "performance", f,
                                   f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                                   others[0] if len(others) == 1 else None)
            client.log_figure(parent_run_id, comp.figure(title=f"performance vs {f}", log_x=f == "learning_rate"),
                              f"plots/performance_vs_{f}.png", save_kwargs={"dpi": plots.DPI})
    return {"points": len(results), **counts, "best_point": best_name, "best_mean_performance": best_mean,
            "training_seconds_total": training_seconds, "wall_seconds": wall, "summary_markdown": md}


def log_report(uri: str, parent_run_id: str, results: list[PointResult], full_label: str, title: str) -> str:
    """The reproduction's report (markdown) and the book's three plots on the parent; the markdown."""
    md = report.markdown(results, full_label, title=title)
    client = store.client(uri)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "report.md").write_text(md)
        client.log_artifact(parent_run_id, str(Path(tmp) / "report.md"))
        for png in report.draw_plots(results, Path(tmp) / "plots", full_label):
            client.log_artifact(parent_run_id, str(png), "plots")
    return md
