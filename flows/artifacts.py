"""What a flow run shows in the Prefect UI: a link to its MLflow run and a markdown summary."""
from __future__ import annotations

from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run

from mynn.config import NetworkConfig
from mynn.sources import redact_url
from mynn.tables import markdown_table


def current_flow_run() -> tuple[str | None, str | None]:
    """(id, UI link) of the flow run this code runs in; (None, None) outside one."""
    if not flow_run.id:
        return None, None
    return str(flow_run.id), (str(flow_run.ui_url) if flow_run.ui_url else None)


def rename_flow_run(name: str) -> None:
    """Give the current flow run ``name`` (its MLflow parent run's name), when it has none of
    its own: a name typed in the Run form is kept, a generated one ("adjective-animal") replaced."""
    if not flow_run.id:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        if _generated(client.read_flow_run(flow_run.id).name):
            client.update_flow_run(flow_run.id, name=name)


def _generated(name: str | None) -> bool:
    """Whether a flow run name looks like Prefect's generated "adjective-animal"."""
    return bool(name) and name.count("-") == 1 and name.replace("-", "").isalpha() and name.islower()


def link(url: str, text: str, key: str) -> None:
    create_link_artifact(link=url, link_text=text, key=key, description="The MLflow run of this flow run")


def summary_markdown(config: NetworkConfig, source: str, summary: dict, alias: str,
                     flow_run_url: str | None = None) -> str:
    """The train flow's result as markdown: score, links, parameters, the registry's decision,
    the timing. Shown as the flow run's artifact in Prefect and as the run's description in MLflow."""
    rows = [*config.to_dict().items(), ("source", redact_url(source))]
    links = [f"MLflow run: [{summary['run_id']}]({summary['run_url']})"]
    if flow_run_url:
        links.append(f"Prefect flow run: [{flow_run_url.rstrip('/').rsplit('/', 1)[-1]}]({flow_run_url})")
    return "\n".join([
        f"# {summary['run_name']}: performance {summary['performance']:.4f}", "",
        *(line + "  " for line in links), "",
        markdown_table(["parameter", "value"], rows),
        (f"Model **{summary['model_name']}** version {summary['model_version']}: "
         f"{'promoted to' if summary['promoted'] else 'not promoted to'} `{alias}` ({summary['reason']})."), "",
        (f"Training {summary['training_seconds']:.1f} s ({summary['records_per_s']:,.0f} records/s) "
         f"of {summary['pipeline_seconds']:.1f} s in the flow.")])


def train_summary(config: NetworkConfig, source: str, summary: dict, alias: str) -> str:
    """The train flow's result as the flow run's markdown artifact; returns the markdown."""
    text = summary_markdown(config, source, summary, alias, current_flow_run()[1])
    create_markdown_artifact(key="summary", description="Result of this training", markdown=text)
    return text


def markdown(key: str, text: str, description: str) -> None:
    create_markdown_artifact(key=key, markdown=text, description=description)


def table(key: str, rows: list[dict], description: str) -> None:
    """A table artifact (one row per dict), e.g. a sweep's points."""
    create_table_artifact(key=key, table=rows, description=description)


def progress(total: int) -> UUID:
    """A progress artifact for ``total`` trainings, at 0 %: update it with :func:`advance`."""
    return create_progress_artifact(0.0, key="trainings", description=f"Trainings finished, of {total}")


def advance(artifact_id: UUID, done: int, total: int) -> None:
    update_progress_artifact(artifact_id, 100.0 * done / total if total else 100.0,
                             description=f"{done} of {total} trainings finished")
