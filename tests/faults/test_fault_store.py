"""Reliability round two, case 5: several ``mynn train`` processes started together on a
SQLite store that does not exist yet, sharing one cache, all finish (the store's schema is
created once, under a lock file: tracking.store.create_store_once)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mynn import paths

N = 3


@pytest.mark.usefixtures("prefect_harness")
def test_concurrent_first_runs_on_a_new_sqlite_store_all_finish(tmp_path):
    from prefect.settings import PREFECT_API_URL

    db = tmp_path / "new" / "mlflow.db"
    assert not db.exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{db}", MYNN_CACHE_DIR=str(tmp_path / "cache"),
               MYNN_RUNS_DIR=str(tmp_path / "runs"), PREFECT_API_URL=str(PREFECT_API_URL.value()))
    procs = [subprocess.Popen([sys.executable, "-m", "flows.cli", "train", "--source", "shipped-small",
                               "--hidden-nodes", str(5 + i), "--epochs", "1", "--model-name", "race"],
                              env=env, cwd=paths.PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(N)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
        assert "already exists" not in err and "Online migration" not in err
    client = MlflowClient(f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("mynn")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == N and {r.info.status for r in runs} == {"FINISHED"}
    versions = client.search_model_versions("name = 'race'")
    assert sorted(int(v.version) for v in versions) == list(range(1, N + 1))
    assert all("mynn.promotion" in v.tags for v in versions)
    assert Path(f"{db}.lock").exists()
