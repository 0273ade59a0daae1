"""Container health check for the compose stack: exit 0 when every URL answers 2xx.

    python /app/docker/healthcheck.py URL [URL ...] [--process WORD]

``--process WORD`` also requires WORD in the command line of the container's main process
(PID 1), e.g. ``serve`` for ``mynn serve``. Standard library only; 5 s per URL. The health
endpoints used here (MLflow ``/health``, Prefect ``/api/health``) answer without credentials
even when the servers' authentication is on.
"""
from __future__ import annotations

import sys
import urllib.request


def main(argv: list[str]) -> int:
    urls, process = [], None
    args = iter(argv)
    for arg in args:
        if arg == "--process":
            process = next(args, None)
        else:
            urls.append(arg)
    if not urls and process is None:
        print(__doc__, file=sys.stderr)
        return 2
    if process is not None:
        try:
            with open("/proc/1/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError as exc:
            print(f"unhealthy: cannot read PID 1's command line: {exc}", file=sys.stderr)
            return 1
        if process not in cmdline:
            print(f"unhealthy: PID 1 is {cmdline.strip()!r}, not {process!r}", file=sys.stderr)
            return 1
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if not 200 <= response.status < 300:
                    print(f"unhealthy: {url} answered {response.status}", file=sys.stderr)
                    return 1
        except Exception as exc:  # any failure to get a 2xx answer is "unhealthy"
            print(f"unhealthy: {url}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
