"""The deployments ``mynn serve`` serves (flows.ops serves them; the module docstring there says
what each is for)."""
from __future__ import annotations

DEFAULT_RETRAIN_CRON = "0 3 * * 1"  # Mondays 03:00
RECONCILE_EVERY_SECONDS = 600
WATCH_EVERY_SECONDS = 300


def deployments(retrain_cron: str | None = DEFAULT_RETRAIN_CRON, source: str = "shipped", workers: int = 2,
                watch_seconds: float | None = WATCH_EVERY_SECONDS):
    """The RunnerDeployments that ``mynn serve`` serves."""
    from flows.events import data_trigger
    from flows.ops import reconcile_flow
    from flows.reproduce import reproduce_flow
    from flows.runners import task_runner
    from flows.sweep_flow import sweep_flow
    from flows.train_flow import train_flow
    from flows.watch_flow import watch_flow

    return [
        train_flow.to_deployment(
            name="train", cron=retrain_cron, parameters={"source": source}, tags=["mynn"],
            triggers=[data_trigger(source)],
            description="Train the book's network (download -> preprocess -> train -> evaluate -> register). "
                        "Runs when the watch flow sees new data, and on its schedule; promotes only a "
                        "significantly better model."),
        watch_flow.to_deployment(
            name="watch", interval=watch_seconds, parameters={"source": source}, tags=["mynn"],
            concurrency_limit=1,  # one look at a time: two at once could both announce the same data
            description="Emit mynn.data.changed when the source's data differs from the champion's."),
        sweep_flow.with_options(task_runner=task_runner(workers)).to_deployment(
            name="sweep", parameters={"source": source}, tags=["mynn"],
            description="Train every combination of a grid: one parent run, a child per point."),
        reproduce_flow.with_options(task_runner=task_runner(workers)).to_deployment(
            name="reproduce", parameters={"source": source}, tags=["mynn"],
            description="The book's whole table over several seeds, with a report beside the book's numbers."),
        reconcile_flow.to_deployment(name="reconcile", interval=RECONCILE_EVERY_SECONDS, tags=["mynn"],
                                     description="Close MLflow runs whose flow run ended badly."),
    ] + _tune(source, workers)


def _tune(source: str, workers: int) -> list:
    """The tune deployment, when Optuna (the ``tune`` extra) is installed."""
    from importlib import import_module
    from importlib.util import find_spec

    return [import_module("flows.tune_flow").deployment(source, workers)] if find_spec("optuna") else []
