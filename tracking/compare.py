"""Compare runs across sweeps: a metric against a parameter, with mean and spread per value."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from mynn.stats import spread
from mynn.tables import markdown_table
from mynn.sources import redact_url
from tracking import store

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class NoRunsError(LookupError):
    """No experiment of that name, or no run to compare; the message says which."""


@dataclass(frozen=True)
class Comparison:
    """Observed metric values grouped by a parameter's value (and by a series, if any)."""

    metric: str
    param: str
    series: dict[str, dict[float, list[float]]]  # series name -> param value -> observations

    def rows(self) -> list[dict]:
        out = []
        for name, groups in self.series.items():
            for x, obs in sorted(groups.items()):
                out.append({"series": name, self.param: x, **spread(obs).to_dict()})
        return out

    def markdown(self) -> str:
        return markdown_table(["series", self.param, "n", f"mean {self.metric}", "std", "min", "max"],
                              [[r["series"], f"{r[self.param]:g}", r["n"],
                                *(f"{r[k]:.4f}" for k in ("mean", "std", "min", "max"))] for r in self.rows()])

    def figure(self, title: str | None = None, book: dict[str, dict[float, float]] | None = None,
               log_x: bool = False) -> Figure:
        from tracking import plots  # matplotlib, only when a figure is asked for

        return plots.plot_series(self.series, book, xlabel=self.param, ylabel=self.metric,
                                 title=title or f"{self.metric} vs {self.param}", log_x=log_x)


def compare(client: MlflowClient, experiment_ids: list[str], metric: str = "performance", param: str = "learning_rate",
            filter_string: str = "", series_param: str | None = None) -> Comparison:
    """Runs matching ``filter_string`` in the experiments, ``metric`` grouped by ``param``.

    ``series_param`` splits the runs into one series per value of that parameter (e.g. two
    epoch curves by learning rate). Runs without the metric or the parameter are skipped.
    """
    series: dict[str, dict[float, list[float]]] = {}
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=5000, page_token=token)
        for run in page:
            value = run.data.metrics.get(metric)
            raw = run.data.params.get(param)
            if value is None or raw is None or not math.isfinite(value):
                continue
            try:
                x = float(raw)
            except ValueError:
                continue
            name = f"{series_param}={run.data.params.get(series_param)}" if series_param else "runs"
            series.setdefault(name, {}).setdefault(x, []).append(value)
        token = page.token
        if not token:
            break
    if not series:
        raise NoRunsError(f"no runs in {experiment_ids} match {filter_string!r} with metric {metric!r} "
                          f"and parameter {param!r}")
    return Comparison(metric, param, series)


def compare_experiments(uri: str, experiments: list[str], metric: str = "performance",
                        param: str = "learning_rate", filter_string: str = "",
                        series_param: str | None = None) -> Comparison:
    """:func:`compare` over experiments named (LookupError naming one that does not exist)."""
    client = store.client(uri)
    ids = []
    for name in experiments:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise NoRunsError(f"no experiment {name!r} in {redact_url(uri)}")
        ids.append(exp.experiment_id)
    return compare(client, ids, metric, param, filter_string, series_param)
