"""Operating against real servers: `mlflow server` and `prefect server` on 127.0.0.1, once
on SQLite and once on PostgreSQL (as in docker-compose.yml), with `mynn serve` serving the
deployments. Skipped, naming what is missing, where PostgreSQL is not installed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.servers import BIN, QUIET_ENV, Server, postgres_available, start_tracking_stack

pytestmark = pytest.mark.timeout(900)

# The train deployment's retraining schedule: weekly, so no run of it starts by itself during the
# tests; the scheduler still plans its next runs at once, and the schedule test starts the first
# of those now instead of waiting for the cron.
RETRAIN_CRON = "15 4 * * 0"


def _env(stack: dict) -> dict:
    return {**os.environ, **QUIET_ENV, "PREFECT_API_URL": stack["prefect"].url,
            "MLFLOW_TRACKING_URI": stack["mlflow"].url, "MYNN_CACHE_DIR": str(stack["root"] / "cache"),
            "MYNN_RUNS_DIR": str(stack["root"] / "runs"), "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "MYNN_STUDY_STORAGE": f"sqlite:///{stack['root'] / 'optuna.db'}"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    """MLflow and Prefect servers (and PostgreSQL behind both for "postgres"), and `mynn serve`."""
    backend = request.param
    if backend == "postgres":
        missing = postgres_available()
        if missing:
            pytest.skip(f"PostgreSQL tests need it: {missing}")
    with serving_stack(backend, tmp_path_factory.mktemp(f"stack-{backend}")) as stack:
        yield stack


@contextmanager
def serving_stack(backend: str, root: Path):
    """The servers of :func:`tests.servers.start_tracking_stack` under ``root`` and `mynn serve`
    serving the deployments to them; all stopped on exit."""
    stoppers = []
    try:
        mlflow, prefect = start_tracking_stack(backend, root, stoppers)
        stack = {"backend": backend, "root": root, "mlflow": mlflow, "prefect": prefect}
        serve_log = root / "serve.log"
        serve = subprocess.Popen([str(BIN / "mynn"), "serve", "--source", "shipped-small", "--retrain-cron",
                                  RETRAIN_CRON, "--watch-every", "0"], env=_env(stack), stdout=open(serve_log, "wb"),
                                 stderr=subprocess.STDOUT, start_new_session=True)
        stoppers.append(Server("serve", "", serve, serve_log).stop)
        stack["serve_log"] = serve_log
        _wait_for_deployments(stack, serve)
        yield stack
    finally:
        for stop in reversed(stoppers):
            stop()


def _prefect_client(stack):
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(stack["prefect"].url)


def _wait_for_deployments(stack, serve: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    names = ["mynn-train/train", "mynn-sweep/sweep", "mynn-reproduce/reproduce", "mynn-reconcile/reconcile", "mynn-tune/tune", "mynn-watch/watch"]
    with _prefect_client(stack) as client:
        while time.monotonic() < deadline:
            if serve.poll() is not None:
                raise RuntimeError(f"mynn serve exited: {stack['serve_log'].read_text()[-3000:]}")
            try:
                for name in names:
                    client.read_deployment_by_name(name)
                return
            except Exception:
                time.sleep(1)
    raise TimeoutError(f"deployments not registered: {stack['serve_log'].read_text()[-3000:]}")


def _until(predicate, timeout: float, what: str, interval: float = 0.5):
    """Poll ``predicate`` until it returns something truthy (for states nobody announces)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout} s")


def _wait_final(stack, flow_run_id, timeout: int):
    """The flow run once it is in a final state, awaited on the Prefect server's event stream:
    ``prefect.flow_runs.wait_for_flow_run`` subscribes to the run's state events, then reads its
    state (so an end before the subscription is not missed), then returns on the final event."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from prefect.client.orchestration import get_client
    from prefect.exceptions import FlowRunWaitTimeout
    from prefect.flow_runs import wait_for_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def wait():
        async with get_client() as client:
            return await wait_for_flow_run(flow_run_id, timeout=timeout, client=client)

    def in_own_thread():  # its own event loop, whatever loop the caller runs (Playwright's)
        with temporary_settings({PREFECT_API_URL: stack["prefect"].url}):
            return asyncio.run(wait())

    try:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(in_own_thread).result()
    except FlowRunWaitTimeout:
        raise TimeoutError(f"flow run {flow_run_id} did not end within {timeout} s: "
                           f"{stack['serve_log'].read_text()[-3000:]}") from None


def _run_deployment(stack, name: str, parameters: dict, timeout: int = 300):
    with _prefect_client(stack) as client:
        dep = client.read_deployment_by_name(name)
        fr = client.create_flow_run_from_deployment(dep.id, parameters=parameters)
    return _wait_final(stack, fr.id, timeout)


def _mlflow_runs_of(stack, flow_run_id) -> list:
    client = MlflowClient(stack["mlflow"].url)
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, filter_string=f"tags.`prefect.flow_run_id` = '{flow_run_id}'")


SMALL = {"hidden_nodes": 20, "epochs": 2, "learning_rate": 0.3}


def test_deployments_are_served_with_typed_parameters_and_a_schedule(stack):
    with _prefect_client(stack) as client:
        dep = client.read_deployment_by_name("mynn-train/train")
        schema = dep.parameter_openapi_schema
        cfg = schema["definitions"]["TrainConfig"]["properties"] if "definitions" in schema else \
            schema["$defs"]["TrainConfig"]["properties"]
        assert cfg["hidden_nodes"]["minimum"] == 1 and cfg["learning_rate"]["exclusiveMinimum"] == 0
        assert cfg["hidden_nodes"]["title"] == "Hidden nodes" and cfg["hidden_nodes"]["description"]
        assert [s.schedule.cron for s in dep.schedules] == [RETRAIN_CRON]
        assert dep.enforce_parameter_schema
        for bad in ({"hidden_nodes": 0}, {"learning_rate": -0.1}):
            with pytest.raises(Exception, match="hidden_nodes|learning_rate|validation|greater"):
                client.create_flow_run_from_deployment(dep.id, parameters={"config": bad})


def test_train_deployment_trains_tracks_and_registers(stack):
    name = f"op-{stack['backend']}"
    fr = _run_deployment(stack, "mynn-train/train", {"config": SMALL, "model_name": name})
    assert fr.state.type.value == "COMPLETED", fr.state
    runs = _mlflow_runs_of(stack, fr.id)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "h20-lr0.3-e2-s0"
    assert run.data.tags["prefect.flow_run_url"].endswith(str(fr.id))
    client = MlflowClient(stack["mlflow"].url)
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.run_id == run.info.run_id
    # the same configuration again: identical predictions, so not significantly better
    fr2 = _run_deployment(stack, "mynn-train/train", {"config": SMALL, "model_name": name})
    run2 = _mlflow_runs_of(stack, fr2.id)[0]
    assert run2.data.tags["mynn.promotion"].startswith("not promoted")
    assert client.get_model_version_by_alias(name, "champion").version == champion.version
    with _prefect_client(stack) as pc:
        arts = pc.read_artifacts()
    keys = {a.key for a in arts if a.flow_run_id == fr.id}
    assert {"mlflow-run", "summary"} <= keys


def test_tune_deployment_runs_a_study_from_its_typed_form(stack):
    if stack["backend"] != "sqlite":
        pytest.skip("exercised once, on the SQLite stack (tests/test_tune.py keeps a study in PostgreSQL)")
    with _prefect_client(stack) as client:
        dep = client.read_deployment_by_name("mynn-tune/tune")
        schema = dep.parameter_openapi_schema
        space = (schema.get("definitions") or schema["$defs"])["TuneSpace"]["properties"]
        assert space["learning_rate"]["items"]["exclusiveMinimum"] == 0 and space["hidden_nodes"]["default"] == [10, 500]
        assert "log scale" in space["learning_rate"]["description"]
        assert schema["properties"]["trials"]["minimum"] == 1 and dep.enforce_parameter_schema
        with pytest.raises(Exception, match="trials|validation|greater"):
            client.create_flow_run_from_deployment(dep.id, parameters={"trials": 0})
    fr = _run_deployment(stack, "mynn-tune/tune", {"space": {"hidden_nodes": [10, 20], "learning_rate": [0.3],
                                                             "epochs": [1]},
                                                   "trials": 5, "sampler": "grid", "grid_points": 2,
                                                   "validation_records": 30})
    assert fr.state.type.value == "COMPLETED", fr.state
    runs = _mlflow_runs_of(stack, fr.id)
    parents = [r for r in runs if r.data.tags["mynn.kind"] == "tune"]
    kids = [r for r in runs if r.data.tags["mynn.kind"] == "point"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(r.data.params["hidden_nodes"]) for r in kids) == [10, 20]  # the grid, not 5 trials
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in kids)
    assert (stack["root"] / "optuna.db").is_file()
    with _prefect_client(stack) as pc:
        arts = [a for a in pc.read_artifacts() if a.flow_run_id == fr.id]
    table = next(a for a in arts if a.key == "tune-trials")
    assert len(json.loads(table.data)) == 2


def test_scheduled_retraining_runs_and_records_its_decision(stack):
    """The next run the scheduler planned from the train deployment's cron, started now rather
    than at its cron time: the served runner picks it up, and it retrains with the deployment's
    parameters and records its promotion decision."""
    if stack["backend"] != "sqlite":
        pytest.skip("the schedule is exercised once, on the SQLite stack")
    import datetime

    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterDeploymentId, FlowRunFilterState,
                                                FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import Scheduled

    now = datetime.datetime.now(datetime.timezone.utc)
    with _prefect_client(stack) as client:
        dep = client.read_deployment_by_name("mynn-train/train")
        planned_filter = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[dep.id]),
                                       state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])))
        # the server's scheduler plans a deployment's runs within seconds of its schedule being
        # set (every 5 s it schedules recently changed deployments), without an event for them
        planned = _until(lambda: [r for r in client.read_flow_runs(flow_run_filter=planned_filter,
                                                                   sort=FlowRunSort.EXPECTED_START_TIME_ASC)
                                  if r.auto_scheduled], 60, "a run planned by the scheduler")
        scheduled = planned[0]
        assert scheduled.expected_start_time > now  # the cron's next time, days away at most a week
        result = client.set_flow_run_state(scheduled.id, Scheduled(scheduled_time=now), force=True)
        assert result.status == SetStateStatus.ACCEPT, result
    fr = _wait_final(stack, scheduled.id, 300)
    assert fr.state.is_completed(), fr.state
    assert fr.auto_scheduled and fr.parameters == {"source": "shipped-small"}
    run = _mlflow_runs_of(stack, fr.id)[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mynn.promotion"].split(":")[0] in ("promoted", "not promoted")
    client = MlflowClient(stack["mlflow"].url)
    version = client.get_model_version("mynn", run.data.tags["mynn.model_version"].split("/")[1])
    assert "mynn.promotion" in version.tags


def test_reconcile_closes_runs_of_crashed_cancelled_and_missing_flow_runs(stack):
    from prefect.states import Cancelled, Crashed, Running

    client = MlflowClient(stack["mlflow"].url)
    exp = client.get_experiment_by_name("reconcile-test") or None
    exp_id = exp.experiment_id if exp else client.create_experiment("reconcile-test")
    with _prefect_client(stack) as pc:
        dep = pc.read_deployment_by_name("mynn-reconcile/reconcile")
        made = {}
        for label, state in (("crashed", Crashed()), ("cancelled", Cancelled()), ("running", Running())):
            fr = pc.create_flow_run_from_deployment(dep.id, state=state)
            made[label] = str(fr.id)
    made["missing"] = "00000000-0000-0000-0000-000000000000"
    runs = {label: client.create_run(exp_id, run_name=label, tags={"prefect.flow_run_id": fid}).info.run_id
            for label, fid in made.items()}
    out = subprocess.run([str(BIN / "mynn"), "reconcile"], env=_env(stack), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    status = {label: client.get_run(rid).info.status for label, rid in runs.items()}
    assert status == {"crashed": "FAILED", "cancelled": "KILLED", "running": "RUNNING", "missing": "FAILED"}
    assert "flow run" in client.get_run(runs["crashed"]).data.tags["mynn.reconciled"]
    client.set_terminated(runs["running"], "FINISHED")


def _wait_metric(client: MlflowClient, run_id: str, metric: str, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(m.step >= step for m in client.get_metric_history(run_id, metric)):
            return
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} never logged {metric} step {step}")


def _wait_run_for(stack, flow_run_id, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _mlflow_runs_of(stack, flow_run_id)
        if runs:
            return runs[0]
        time.sleep(0.3)
    raise TimeoutError(f"no MLflow run for flow run {flow_run_id}")


def test_sigkill_of_a_deployment_run_is_closed_by_reconcile(stack):
    """The runner marks the killed flow run CRASHED; reconcile then closes its MLflow run."""
    with _prefect_client(stack) as pc:
        dep = pc.read_deployment_by_name("mynn-train/train")
        fr = pc.create_flow_run_from_deployment(dep.id, parameters={
            "config": {"hidden_nodes": 50, "epochs": 400, "learning_rate": 0.1}, "model_name": "killed"})
    run = _wait_run_for(stack, fr.id)
    client = MlflowClient(stack["mlflow"].url)
    _wait_metric(client, run.info.run_id, "train_mse", 1)
    os.kill(int(client.get_run(run.info.run_id).data.tags["mynn.pid"]), signal.SIGKILL)
    assert _wait_final(stack, fr.id, 60).state.type.value in ("CRASHED", "FAILED", "CANCELLED")
    assert client.get_run(run.info.run_id).info.status == "RUNNING"  # nobody could close it ...
    out = subprocess.run([str(BIN / "mynn"), "reconcile"], env=_env(stack), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert client.get_run(run.info.run_id).info.status in ("FAILED", "KILLED")  # ... until reconcile
    with pytest.raises(Exception):
        client.get_registered_model("killed")


def test_sigterm_ends_the_run_killed_and_a_resume_continues_from_the_checkpoint(stack, tmp_path):
    if stack["backend"] != "sqlite":
        pytest.skip("exercised once, on the SQLite stack")
    env = _env(stack)
    cfg = ["--hidden-nodes", "30", "--learning-rate", "0.3", "--epochs", "120", "--source", "shipped-small",
           "--model-name", "resumed", "--experiment", "sigterm"]
    proc = subprocess.Popen([str(BIN / "mynn"), "train", *cfg], env=env, stdout=open(tmp_path / "train.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    client = MlflowClient(stack["mlflow"].url)
    deadline = time.monotonic() + 120
    run = None
    while time.monotonic() < deadline and run is None:
        exp = client.get_experiment_by_name("sigterm")
        found = client.search_runs([exp.experiment_id]) if exp else []
        run = found[0] if found else None
        time.sleep(0.3)
    assert run is not None, (tmp_path / "train.log").read_text()[-3000:]
    _wait_metric(client, run.info.run_id, "train_mse", 3)
    # Freeze the process, check that its run is still RUNNING, then deliver SIGTERM: the signal
    # surely arrives while the run is in progress (a short run once finished before a plain kill).
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        status = client.get_run(run.info.run_id).info.status
        assert status == "RUNNING", f"the run ended ({status}) before it could be interrupted: make it longer"
        os.kill(proc.pid, signal.SIGTERM)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=60) != 0
    killed = client.get_run(run.info.run_id)
    assert killed.info.status == "KILLED", (tmp_path / "train.log").read_text()[-3000:]
    flow_run_id = killed.data.tags["prefect.flow_run_id"]
    with _prefect_client(stack) as pc:
        assert pc.read_flow_run(flow_run_id).state.type.value in ("CRASHED", "CANCELLED", "FAILED")
    done_epochs = max(m.step for m in client.get_metric_history(run.info.run_id, "train_mse"))
    out = subprocess.run([str(BIN / "mynn"), "train", *cfg, "--resume", run.info.run_id], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "resuming from checkpoint" in out.stdout + out.stderr
    resumed = client.get_run(run.info.run_id)
    assert resumed.info.status == "FINISHED"
    # its description in MLflow links to the Prefect flow run (a real server has a UI address)
    flow_link = resumed.data.tags["prefect.flow_run_url"]
    assert flow_link.startswith(stack["prefect"].url.removesuffix("/api"))
    assert f"({flow_link})" in resumed.data.tags["mlflow.note.content"]
    assert int(resumed.data.tags["mynn.resumed_from_epoch"]) >= min(done_epochs, 1)
    # the resumed model is the uninterrupted one, bit for bit
    import numpy as np

    from mynn import NetworkConfig, fit
    from mynn.csvfile import read_csv
    from mynn.network import Network
    from mynn.paths import data_dir

    tr = read_csv(data_dir() / "mnist_train_100.csv")
    ref, _ = fit(NetworkConfig(hidden_nodes=30, learning_rate=0.3, epochs=120), tr.pixels, tr.labels)
    got = Network.load(client.download_artifacts(run.info.run_id, "weights.npz", str(tmp_path)))
    assert np.array_equal(got.wih, ref.wih) and np.array_equal(got.who, ref.who)
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_mse")) == list(range(1, 121))


def test_tracking_server_down_fails_fast_naming_it(stack, tmp_path):
    env = {**_env(stack), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # nothing listens on port 9
    t0 = time.monotonic()
    out = subprocess.run([str(BIN / "mynn"), "train", "--source", "shipped-small", "--epochs", "1"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "http://127.0.0.1:9" in out.stdout + out.stderr
    assert time.monotonic() - t0 < 60


# ---- a real browser: Playwright driving Debian's Chromium --------------------------------------
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


def _browser(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def _need_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser tests need Playwright for Python (pip install playwright, in the test extra)")
    if not Path(CHROMIUM).exists():
        pytest.skip("browser tests need Debian's chromium (apt-get install chromium), /usr/bin/chromium is missing")


def test_browser_run_form_in_prefect_ui_then_the_run_in_mlflow_ui(stack):
    """Open the Prefect UI, find the train deployment, fill in its Run form, start it and see it
    complete; then find the run in the MLflow UI with its parameters, metric chart and plots."""
    if stack["backend"] != "sqlite":
        pytest.skip("the browser test runs once, on the SQLite stack")
    _need_browser()
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ui = stack["prefect"].url[: -len("/api")]
    name = "browser-model"
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{ui}/deployments", wait_until="networkidle")
            page.get_by_text("mynn-train", exact=True).first.wait_for()
            page.screenshot(path=SCREENSHOTS / "prefect-deployments.png")
            with _prefect_client(stack) as pc:
                dep = pc.read_deployment_by_name("mynn-train/train")
            page.goto(f"{ui}/deployments/deployment/{dep.id}", wait_until="networkidle")
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text("Custom run").first.click()
            page.wait_for_load_state("networkidle")

            def field(label: str):
                prop = page.locator(".schema-form-property").filter(
                    has=page.locator(".schema-form-property__label", has_text=f"{label} (Optional)")).last
                return prop.locator("input, textarea").first

            for label, value in (("Hidden nodes", "24"), ("Learning rate", "0.25"), ("Epochs", "3"),
                                 ("model_name", name)):
                field(label).fill(value)
            page.screenshot(path=SCREENSHOTS / "prefect-run-form.png", full_page=True)
            # the flow run the form creates is the API's answer to the form's request (the
            # "scheduled to start" toast is brief and may come and go on a loaded machine)
            with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(
                    f"/deployments/{dep.id}/create_flow_run"), timeout=60000) as created:
                page.get_by_role("button", name="Submit").click()
            assert created.value.ok, created.value.text()
            try:
                fr = _wait_final(stack, created.value.json()["id"], 240)
            except TimeoutError:
                page.screenshot(path=SCREENSHOTS / "prefect-run-form-after-submit.png", full_page=True)
                raise
            assert fr.state.is_completed(), fr.state
            assert fr.parameters["model_name"] == name and fr.parameters["config"]["learning_rate"] == 0.25
            page.goto(f"{ui}/runs/flow-run/{fr.id}", wait_until="networkidle")
            page.get_by_text("Completed").first.wait_for(timeout=30000)
            page.screenshot(path=SCREENSHOTS / "prefect-flow-run.png", full_page=True)

            run = _mlflow_runs_of(stack, fr.id)[0]
            assert run.info.run_name == "h24-lr0.25-e3-s0"
            murl = stack["mlflow"].url
            base = f"{murl}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
            page.goto(base, wait_until="load")
            page.get_by_text("h24-lr0.25-e3-s0").first.wait_for(timeout=60000)
            page.get_by_text("hidden_nodes", exact=True).first.wait_for(timeout=30000)
            body = page.inner_text("body")
            assert "learning_rate" in body and "0.25" in body and "performance" in body
            page.screenshot(path=SCREENSHOTS / "mlflow-run.png", full_page=True)
            page.goto(base + "/model-metrics", wait_until="load")
            page.get_by_placeholder("Search metric charts").fill("train_mse")
            page.get_by_text("train_mse", exact=True).first.wait_for(timeout=60000)
            page.wait_for_timeout(1500)  # let the chart draw
            page.screenshot(path=SCREENSHOTS / "mlflow-metrics.png", full_page=True)
            page.goto(base + "/artifacts/plots/learning_curve.png", wait_until="load")
            page.get_by_text("confusion_matrix.png").first.wait_for(timeout=60000)
            page.locator("img").last.wait_for(timeout=60000)
            page.screenshot(path=SCREENSHOTS / "mlflow-plots.png", full_page=True)
        finally:
            browser.close()
    assert len(list(SCREENSHOTS.glob("*.png"))) >= 6
