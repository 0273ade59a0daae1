"""Progress at the terminal: `mynn sweep` and `mynn train` run in a real pseudo-terminal draw live
bars (counts, rate, ETA); the same commands into a pipe print plain log lines and no bar.
Real commands against the session's Prefect server and a SQLite store under tmp_path."""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import QUIET_ENV

MYNN = str(Path(sys.executable).parent / "mynn")
BAR = "━"  # rich's bar character
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


@pytest.fixture
def env(tracking_env, prefect_harness):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        api_url = str(c.api_url).rstrip("/")
    return {**os.environ, **QUIET_ENV, "PREFECT_API_URL": api_url, "TERM": "xterm", "COLUMNS": "160"}


def _in_terminal(cmd: list[str], env: dict, timeout: float = 300) -> tuple[int, str]:
    """Run ``cmd`` with a pseudo-terminal as its stdin, stdout and stderr; (exit code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the command closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=timeout), ANSI.sub("", out.decode("utf-8", "replace").replace("\r", "\n"))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


SWEEP = [MYNN, "sweep", "--source", "shipped-small", "--hidden-nodes", "10", "20", "--learning-rate", "0.3",
         "--epochs", "1", "--experiment", "progress"]


def test_a_sweep_on_a_terminal_shows_a_live_bar_of_its_trainings(env):
    code, out = _in_terminal(SWEEP, env)
    assert code == 0, out[-3000:]
    bars = [line for line in out.splitlines() if line.startswith("sweep ") and BAR in line]
    assert any("0/2 trainings" in b for b in bars) or any("1/2 trainings" in b for b in bars), bars
    assert any("2/2 trainings" in b and "ETA" in b for b in bars), bars  # counts, ETA
    assert "2/2 trainings finished" in out  # and the log line of each training, above the bar


def test_training_on_a_terminal_shows_epochs_and_into_a_pipe_prints_lines_only(env):
    cmd = [MYNN, "train", "--source", "shipped-small", "--hidden-nodes", "10", "--epochs", "3", "--model-name", "bars"]
    code, out = _in_terminal(cmd, env)
    assert code == 0, out[-3000:]
    bars = [line for line in out.splitlines() if BAR in line and "train h10-lr0.1-e3-s0" in line]
    assert any("3/3 epochs" in b and "epochs/s" in b for b in bars), bars  # counts and rate
    piped = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr[-3000:]
    assert BAR not in piped.stdout + piped.stderr  # not a terminal: no bar...
    assert "epoch 3: train_mse" in piped.stdout + piped.stderr  # ...the log lines are the record
