"""tracking.sweep_summary: the table of points, the best point by mean over seeds, the counts,
on a parent run in a real SQLite store under tmp_path."""
from __future__ import annotations

import json

import pytest

from mynn.config import NetworkConfig
from tracking.store import ensure_experiment
from tracking.sweep_summary import log_summary, table
from tracking.sweeps import PointResult


def point(perf: float, origin: str = "trained", **config) -> PointResult:
    cfg = NetworkConfig(**config)
    return PointResult(cfg, "small", f"p-{cfg.run_name()}", f"r-{cfg.run_name()}", origin, perf, 0.1, [perf], 1.0)


def test_the_table_shows_what_varies_with_performance_and_origin():
    results = [point(0.75, hidden_nodes=20, seed=1), point(0.5, "reused:r0", hidden_nodes=10, seed=1)]
    csv_text, md = table(results)
    assert csv_text.splitlines()[0].startswith("data,hidden_nodes,learning_rate,epochs,seed")
    assert len(csv_text.splitlines()) == 3
    # rows sorted by the varying fields; unchanging fields (seed, learning rate ...) left out
    assert md.splitlines() == ["| hidden_nodes | performance | origin |", "|---|---|---|",
                               "| 10 | 0.5000 | reused:r0 |", "| 20 | 0.7500 | trained |"]


def test_sweep_summary_names_the_best_point_with_its_options(tracking_env, tmp_path):
    client, exp_id = ensure_experiment(tracking_env.uri, "t-summary")
    parent = client.create_run(exp_id, run_name="parent", tags={"mynn.kind": "sweep"}).info.run_id
    results = []
    for dtype, perfs in (("float64", (0.6, 0.8)), ("float32", (0.75, 0.85))):
        for seed, perf in enumerate(perfs):
            cfg = NetworkConfig(hidden_nodes=10, learning_rate=0.3, epochs=1, seed=seed, dtype=dtype)
            results.append(PointResult(cfg, "small", f"p-{dtype}-{seed}", f"r-{dtype}-{seed}", "trained", perf, 0.1,
                                       [perf], 1.0))
    summary = log_summary(tracking_env.uri, exp_id, parent, results, 0.0)
    # the best mean over seeds is float32's (0.8 against 0.7); its name keeps "-f32"
    assert summary["best_point"] == "h10-lr0.3-e1-f32 (small)"
    assert summary["best_mean_performance"] == pytest.approx(0.8)
    assert (summary["points"], summary["trained"], summary["derived"], summary["reused"]) == (4, 4, 0, 0)
    assert client.get_run(parent).data.tags["mynn.best_point"] == "h10-lr0.3-e1-f32 (small)"
    best = json.loads(open(client.download_artifacts(parent, "best.json", str(tmp_path))).read())
    assert best["point"] == "h10-lr0.3-e1-f32 (small)" and best["runs"] == ["r-float32-0", "r-float32-1"]
