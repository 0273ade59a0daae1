"""flows.prefect_db: Prefect's database migrated once (by Prefect itself), copied into new homes
only when its bytes are the recorded ones, and a real Prefect server working from the copy."""
from __future__ import annotations

import json
import os
import signal
import urllib.request

import pytest

from flows import prefect_db, server_process


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    directory = tmp_path_factory.mktemp("template")
    db = prefect_db.prepare(directory)  # Prefect's own migrations, about 20 s
    return directory, db


def _leftovers(home):
    return sorted(p.name for p in home.iterdir())


def test_prepare_keeps_the_migrated_database_and_its_digest(template):
    directory, db = template
    record = json.loads(db.with_suffix(".json").read_text())
    assert record["sha256"] == prefect_db._sha256(db) and record["prefect"] == db.stem.removeprefix("prefect-")
    assert sorted(p.name for p in directory.iterdir()) == [db.name, db.with_suffix(".json").name]  # no scratch left


def test_a_new_home_gets_a_copy_once_and_a_home_with_a_database_keeps_its_own(template, tmp_path):
    directory, db = template
    home = tmp_path / "home"
    assert prefect_db.seed(home, {}, directory)
    assert (home / "prefect.db").read_bytes() == db.read_bytes()
    (home / "prefect.db").write_bytes(b"the user's own")
    assert not prefect_db.seed(home, {}, directory)
    assert (home / "prefect.db").read_bytes() == b"the user's own" and _leftovers(home) == ["prefect.db"]


def test_a_template_whose_bytes_changed_is_not_copied(template, tmp_path):
    directory, db = template
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for src in (db, db.with_suffix(".json")):
        (damaged / src.name).write_bytes(src.read_bytes())
    data = bytearray((damaged / db.name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (damaged / db.name).write_bytes(bytes(data))
    home = tmp_path / "home"
    assert not prefect_db.seed(home, {}, damaged)
    assert _leftovers(home) == []  # no database, no half-copied temporary file


def test_another_prefect_version_or_a_configured_database_is_left_alone(template, tmp_path):
    directory, db = template
    other = tmp_path / "other"
    other.mkdir()
    (other / db.name).write_bytes(db.read_bytes())
    record = json.loads(db.with_suffix(".json").read_text())
    (other / db.with_suffix(".json").name).write_text(json.dumps({**record, "prefect": "0.0.1"}))
    assert not prefect_db.seed(tmp_path / "a", {}, other)
    assert not prefect_db.seed(tmp_path / "b", {"PREFECT_API_DATABASE_CONNECTION_URL": "postgresql+asyncpg://x"},
                               directory)
    profiled = tmp_path / "c"
    profiled.mkdir()
    (profiled / "profiles.toml").write_text('[profiles.default]\nPREFECT_SERVER_DATABASE_CONNECTION_URL = "x"\n')
    assert not prefect_db.seed(profiled, {}, directory)
    assert not (tmp_path / "a" / "prefect.db").exists() and not (tmp_path / "b" / "prefect.db").exists()
    assert _leftovers(profiled) == ["profiles.toml"]


def test_a_prefect_server_works_from_the_copy(template, tmp_path):
    directory, _ = template
    home = tmp_path / "home"
    assert prefect_db.seed(home, {}, directory)
    port = server_process.any_free_port()
    proc = server_process.launch(home, port, "server.log", ui=False)
    try:
        assert server_process.wait_healthy(proc, f"http://127.0.0.1:{port}", 120), (home / "server.log").read_text()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/flows/", data=json.dumps({"name": "f"}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["name"] == "f"  # it writes to the copied database
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
