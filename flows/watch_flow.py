"""The watch flow: is the source's data still what the champion was trained on?

It fetches and prepares the configured source as a training would (the download cache keyed by
content, the arrays by their digests), compares both content digests with the champion's, and
emits ``mynn.data.changed`` (flows.events) when they differ and that content was not announced
before. ``mynn serve`` serves it every few minutes; the train deployment's trigger does the rest.
"""
from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from prefect.variables import Variable
from pydantic import Field

from flows import events, tasks
from flows.params import Alias, ModelName
from mynn.sources import redact_url
from tracking.registry import champion_data
from tracking.store import tracking_uri


@flow(name="mynn-watch")
def watch_flow(
    source: Annotated[str, Field(description="The data source to watch (as the train deployment's)")] = "shipped",
    model_name: ModelName = "mynn",
    alias: Alias = "champion",
) -> dict:
    """Emit mynn.data.changed when the source's content differs from the champion's data."""
    log = get_run_logger()
    data = tasks.preprocess(tasks.download(source))
    now = {"train_digest": data.train.digest, "test_digest": data.test.digest}
    champ = champion_data(tracking_uri(), model_name, alias)
    same = champ is not None and all(champ[k] == v for k, v in now.items())
    key = f"{data.train.digest}:{data.test.digest}"
    announced = Variable.get(events.announced_variable(source), default=None)
    if same:
        log.info(f"{redact_url(source)}: the data of {model_name}@{alias} (version {champ['version']}): nothing to do")
    elif announced == key:
        log.info(f"{redact_url(source)}: new data (train {data.train.digest[:12]}), announced before: not again")
    else:
        events.emit_data_changed(source, data, champ)
        Variable.set(events.announced_variable(source), key, overwrite=True)
        log.info(f"{redact_url(source)}: new data (train {data.train.digest[:12]}, test {data.test.digest[:12]}; "
                 f"champion: {champ['train_digest'][:12] if champ else 'none'}): emitted {events.DATA_CHANGED}")
    return {**now, "champion": champ, "changed": not same, "emitted": not same and announced != key}
