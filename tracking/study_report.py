"""What a study's parent run records when the search ends (or pauses): the best trial's
parameters and scores, the trials as a table, and three plots drawn from the study's trials:
the optimisation history, the parameters' importances (Optuna's PED-ANOVA, which needs no
scikit-learn) and a slice plot (the validation score against each parameter).

The best trial is chosen by its validation score only; its test score is reported beside it,
never used to choose. Figures are made without pyplot (no global state; trials run in threads).
"""
from __future__ import annotations

import json
import math
import warnings

import optuna
from matplotlib import ticker
from matplotlib.figure import Figure
from mlflow.entities import Metric, RunTag
from optuna.trial import TrialState

from mynn import search
from tracking import store
from tracking.plots import DPI
from tracking.runs import now_ms
from tracking.studies import SURPLUS


def trial_rows(study: optuna.Study, children: dict[int, object]) -> list[dict]:
    """One row per trial: number, state, value (validation), parameters, test score and child run."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(SURPLUS):
            continue
        run = children.get(t.number)
        rows.append({"trial": t.number, "state": t.state.name, "validation_performance": t.value,
                     **t.params, "test_performance": run.data.metrics.get("performance") if run else None,
                     "origin": run.data.tags.get("mynn.origin") if run else None,
                     "pruned_epoch": run.data.tags.get("mynn.pruned_epoch") if run else None,
                     "run_id": run.info.run_id if run else None})
    return rows


def study_children(uri: str, experiment_id: str, parent_run_id: str) -> dict[int, object]:
    """The parent's finished child runs by trial number (the last one of a trial number wins)."""
    client = store.client(uri)
    runs = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}' "
                              "and attributes.status = 'FINISHED'", max_results=5000)
    return {int(r.data.tags["mynn.trial"]): r for r in sorted(runs, key=lambda r: r.info.start_time)
            if "mynn.trial" in r.data.tags}


def log_study(uri: str, experiment_id: str, parent_run_id: str, study: optuna.Study,
              dims: tuple[search.Dim, ...]) -> dict:
    """Record the study on its parent run; returns the summary (best trial, counts, rows)."""
    client = store.client(uri)
    children = study_children(uri, experiment_id, parent_run_id)
    rows = trial_rows(study, children)
    counts = {s.name.lower(): sum(1 for r in rows if r["state"] == s.name)
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    summary: dict = {"study": study.study_name, "trials": len(rows), **{f"trials_{k}": v for k, v in counts.items()}}
    ts = now_ms()
    metrics = [Metric(f"trials_{k}", v, ts, 0) for k, v in counts.items()]
    tags = []
    if complete:
        best = study.best_trial
        run = children.get(best.number)
        test = run.data.metrics.get("performance") if run else None
        summary.update(best_trial=best.number, best_params=best.params, best_validation_performance=best.value,
                       best_test_performance=test, best_run_id=run.info.run_id if run else None)
        metrics.append(Metric("best_validation_performance", best.value, ts, 0))
        if test is not None:
            metrics.append(Metric("best_test_performance", test, ts, 0))
        tags += [RunTag("mynn.best_params", json.dumps(best.params)), RunTag("mynn.best_trial", str(best.number))]
        if run is not None:
            tags.append(RunTag("mynn.best_run_id", run.info.run_id))
        client.log_dict(parent_run_id, {"trial": best.number, "params": best.params, "validation_performance":
                                        best.value, "test_performance": test}, "best_params.json")
    client.log_batch(parent_run_id, metrics=metrics, tags=tags)
    client.log_dict(parent_run_id, rows, "trials.json")
    for name, fig in figures(study, dims).items():
        client.log_figure(parent_run_id, fig, f"plots/{name}.png", save_kwargs={"dpi": DPI})
    summary["rows"] = rows
    return summary


def figures(study: optuna.Study, dims: tuple[search.Dim, ...]) -> dict[str, Figure]:
    """The optimisation history, the importances (2+ complete trials, 2+ varying parameters)
    and the slice plot (1+ complete trial)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    out = {"optimization_history": _history(study)}
    varying = [d for d in search.searched(dims)]
    if len(complete) >= 2 and len(varying) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            importances = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
        out["param_importances"] = _importances(importances)
    if complete and varying:
        out["slice"] = _slice(complete, varying)
    return out


def _history(study: optuna.Study) -> Figure:
    fig = Figure(figsize=(7, 4.4), layout="constrained")
    ax = fig.subplots()
    done = [t for t in study.get_trials(deepcopy=False) if t.value is not None or t.state == TrialState.PRUNED]
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    pruned = [t for t in done if t.state == TrialState.PRUNED and t.intermediate_values]
    ax.scatter([t.number for t in complete], [t.value for t in complete], label="trial (complete)", zorder=3)
    ax.scatter([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
               marker="x", color="grey", label="pruned (last epoch's score)", zorder=2)
    best, line = -math.inf, []
    for t in sorted(complete, key=lambda t: t.number):
        best = max(best, t.value)
        line.append((t.number, best))
    if line:
        ax.step(*zip(*line), where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation performance")
    ax.set_title(f"Optimisation history: {study.study_name}")
    fig.legend(loc="outside lower center", ncols=3, fontsize="small")
    return fig


def _importances(importances: dict[str, float]) -> Figure:
    fig = Figure(figsize=(6, 0.6 + 0.5 * len(importances)), layout="constrained")
    ax = fig.subplots()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance (PED-ANOVA) for the validation score")
    ax.set_title("Parameter importances")
    return fig


def _slice(complete, dims) -> Figure:
    fig = Figure(figsize=(4 * len(dims), 3.6), layout="constrained")
    axes = fig.subplots(1, len(dims), squeeze=False)[0]
    for ax, d in zip(axes, dims):
        xs = [t.params[d.name] for t in complete if d.name in t.params]
        ys = [t.value for t in complete if d.name in t.params]
        if d.choices:
            ax.scatter([list(d.choices).index(x) for x in xs], ys, c=[t.number for t in complete if d.name in t.params])
            ax.set_xticks(range(len(d.choices)), [str(c) for c in d.choices])
        else:
            ax.scatter(xs, ys, c=[t.number for t in complete if d.name in t.params], cmap="viridis")
            if d.log:
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
                ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(d.name)
    axes[0].set_ylabel("validation performance")
    fig.suptitle("Slice: each trial's score against each parameter (colour: trial number)")
    return fig
