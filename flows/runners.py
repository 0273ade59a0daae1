"""Where sweep points train: threads of this process, or a Dask cluster (prefect-dask).

Threads, not processes, on this machine: the training kernel releases the GIL (numba ``nogil``),
so two threads train on two cores, and a thread starts at once, where a new process spent 5-10 s
importing Prefect, MLflow and numba before its first epoch (issue #14). A Dask cluster's workers
are processes of their own (other machines, or isolation).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from prefect.task_runners import ThreadPoolTaskRunner

DEFAULT_WORKERS = 2


class MissingExtraError(RuntimeError):
    """An option needs an optional part of mynn that is not installed; the message says how to add it."""


def task_runner(workers: int = DEFAULT_WORKERS, dask_address: str | None = None, processes: bool = False):
    """``workers`` threads of this process, ``workers`` processes (``processes``: Prefect's
    process pool, for isolation; each pays its imports), or the Dask cluster at ``dask_address``
    (needs the ``dask`` extra: ``pip install 'mynn[dask]'``)."""
    if processes and not dask_address:
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=workers)
    if dask_address:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise MissingExtraError(f"--dask-address {dask_address} needs prefect-dask, which is not installed: "
                                    "pip install 'mynn[dask]' (or prefect-dask)") from None

        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=workers)


@contextmanager
def workers_reach_this_api() -> Iterator[None]:
    """Worker processes must report to this flow's Prefect API. A process pool passes the
    current Prefect settings on to its workers, so when the API address is not in the settings
    (a temporary server Prefect started by itself) it is put there for the block, in Prefect's
    settings context: no environment variable of this process changes."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url).rstrip("/")
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield
