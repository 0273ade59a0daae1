"""Which process owns a RUNNING MLflow run, and whether it still runs (Linux /proc).

A run records its owner as tags (pid, host, process start time), so a reused pid is not taken
for the owner; :func:`owner_state` reads them back. Used when a run is reopened (refused while
its owner lives) and by ``mynn reconcile`` (a run whose owner is gone is closed).
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

TAG_PID, TAG_HOST, TAG_PID_START = "mynn.pid", "mynn.host", "mynn.pid_start"


def _process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of process ``pid`` from /proc (start in clock ticks after boot),
    or None if there is no such process (or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # fields 3.. of proc(5)
    return (fields[0], fields[19]) if len(fields) > 19 else None


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of a run (pid, host, process start time)."""
    tags = {TAG_PID: str(os.getpid()), TAG_HOST: socket.gethostname()}
    stat = _process_stat(os.getpid())
    if stat is not None:
        tags[TAG_PID_START] = stat[1]
    return tags


def owner_state(tags: dict[str, str]) -> str:
    """Whether the process that owns a run still runs: "alive", "gone", "self" (this process)
    or "unknown" (another host, no owner recorded, or no /proc to look in)."""
    pid, host, start = tags.get(TAG_PID), tags.get(TAG_HOST), tags.get(TAG_PID_START)
    if not pid or not pid.isdigit() or host != socket.gethostname() or not Path("/proc/self/stat").exists():
        return "unknown"
    stat = _process_stat(int(pid))
    if stat is None or stat[0] in ("Z", "X"):
        return "gone"  # no such process, or it ended and is not yet reaped
    if start is not None and stat[1] != start:
        return "gone"  # that pid is another process now
    return "self" if int(pid) == os.getpid() else "alive"


