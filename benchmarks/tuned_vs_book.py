"""An honest comparison (issue #15): ``mynn tune`` with a budget, its chosen config re-trained over
5 seeds, next to the book's best and the grid's best from ``mynn reproduce``.

    python -m benchmarks.tuned_vs_book [--trials 40] [--timeout 10m] [--seeds 5]

1. ``mynn tune --trials N --timeout T`` on full MNIST (10,000 training records held out to choose
   by; the test set is never used to choose). Its wall time is measured.
2. The chosen config re-trained on all 60,000 training records for seeds 0..4
   (``mynn sweep ... --seed 0 1 2 3 4``): mean ± std of the test score.
3. ``mynn reproduce``: the book's grid over the same seeds (finished points are reused); its best
   point, which the book (and the grid) choose by the *test* score.

It runs the installed ``mynn`` against the current store (MLFLOW_TRACKING_URI, or the project's
mlflow.db) and Prefect server, as a user would; prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import time

from mlflow import MlflowClient

from benchmarks.main_job import MYNN
from tracking.store import tracking_uri

BOOK_BEST = ("the book's best (one run; H=500, lr 0.1, 5 epochs; chosen by test score)", 0.9762)


def run(*args: str) -> tuple[dict, float]:
    """``mynn args``: its JSON summary (the last top-level object printed) and wall seconds."""
    t0 = time.perf_counter()
    done = subprocess.run([str(MYNN), *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"mynn {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    out = done.stdout
    i = out.rfind("\n{\n")  # the summary: the last object printed at the line's start
    return json.loads(out[i + 1:] if i >= 0 else out[out.index("{"):]), wall


def child_scores(experiment: str, parent_run_id: str, **params: str) -> list[float]:
    """Test scores of the parent's children whose parameters (as numbers where they are) are ``params``."""
    client = MlflowClient(tracking_uri())
    exp = client.get_experiment_by_name(experiment)
    kids = client.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                              max_results=1000)
    def same(a: str | None, b: str) -> bool:
        try:
            return a is not None and float(a) == float(b)
        except ValueError:
            return a == b
    return [r.data.metrics["performance"] for r in kids if all(same(r.data.params.get(k), v) for k, v in params.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", default="40")
    parser.add_argument("--timeout", default="10m")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--study", default=None, help="study name (default: bench-<time>)")
    args = parser.parse_args()
    seeds = [str(s) for s in range(args.seeds)]
    study = args.study or time.strftime("bench-%Y%m%d-%H%M%S")
    tuned, tune_wall = run("tune", "--trials", args.trials, "--timeout", args.timeout, "--study", study)
    best = tuned["best_params"]
    options = [x for k, v in best.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    retrained, retrain_wall = run("sweep", *options, "--seed", *seeds, "--experiment", "mynn-tuned",
                                  "--name", f"retrain-{study}")
    scores = child_scores("mynn-tuned", retrained["parent_run_id"])
    grid, grid_wall = run("reproduce", "--seeds", str(args.seeds))
    best_grid = grid["best_point"]  # e.g. "h500-lr0.1-e5 (full)"
    h, lr, e = re.match(r"h(\d+)-lr([0-9.e-]+)-e(\d+)", best_grid).groups()
    grid_scores = child_scores("mynn-reproduce", grid["parent_run_id"], hidden_nodes=h, learning_rate=lr, epochs=e,
                               data=best_grid.split("(")[-1].rstrip(")"))

    def ms(xs: list[float]) -> str:
        return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f} (n={len(xs)})" if len(xs) > 1 else "-"
    print(f"\n`mynn tune --trials {args.trials} --timeout {args.timeout}` (study {study}): {tuned['trials']} trials "
          f"({tuned['trials_complete']} complete, {tuned['trials_pruned']} pruned, {tuned['trials_fail']} failed) "
          f"in {tune_wall:.0f} s wall; chosen by validation score {tuned['best_validation_performance']:.4f}: "
          f"{best}; that trial's test score (seed 0, 50,000 training records) {tuned['best_test_performance']:.4f}.\n")
    print("| configuration | how it was chosen | test performance over seeds 0..%d |" % (args.seeds - 1))
    print("|---|---|---|")
    print(f"| {BOOK_BEST[0].split(' (')[0]}: H=500, lr 0.1, 5 epochs | by test score, one run | {BOOK_BEST[1]:.4f} (n=1) |")
    print(f"| grid's best from `mynn reproduce`: {best_grid} | by test score (mean over seeds) | {ms(grid_scores)} |")
    print(f"| tuned: {', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in best.items())} "
          f"| by validation score (10,000 held-out training records) | {ms(scores)} |")
    print(f"\nwall: tune {tune_wall:.0f} s, retrain over {args.seeds} seeds {retrain_wall:.0f} s, "
          f"reproduce {grid_wall:.0f} s")


if __name__ == "__main__":
    main()
