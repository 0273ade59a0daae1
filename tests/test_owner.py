"""tracking.owner: a run's owner process, recognised by pid, host and start time."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

from tracking.owner import TAG_HOST, TAG_PID, TAG_PID_START, owner_state, owner_tags


def test_this_process_owns_what_it_tags():
    tags = owner_tags()
    assert tags[TAG_PID] == str(os.getpid()) and tags[TAG_HOST] == socket.gethostname()
    assert owner_state(tags) == "self"


def test_a_live_process_is_alive_and_an_ended_one_or_a_reused_pid_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tags = {TAG_PID: str(child.pid), TAG_HOST: socket.gethostname()}
        assert owner_state(tags) == "alive"
        assert owner_state({**tags, TAG_PID_START: "1"}) == "gone"  # that pid started at another time
    finally:
        child.kill()
        child.wait()
    assert owner_state(tags) == "gone"


def test_another_host_or_no_owner_cannot_be_checked():
    assert owner_state({TAG_PID: "1", TAG_HOST: "elsewhere.example"}) == "unknown"
    assert owner_state({}) == "unknown"
