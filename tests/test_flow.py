"""The whole flow, run by Prefect against one temporary Prefect server (fixture
``prefect_harness``) and tracked in a real SQLite MLflow store under tmp_path
(fixture ``tracking_env``): nothing is mocked, the data are the shipped 100/10 subsets.
"""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from prefect.exceptions import ParameterTypeError
from pydantic import ValidationError

from flows.params import TrainConfig
from flows.train_flow import train_flow
from mynn import paths
from mynn.config import NetworkConfig
from mynn.dataset import KNOWN_DIGESTS, DataFormatError
from tracking.runs import git_state

pytestmark = pytest.mark.usefixtures("prefect_harness")

CONFIG = dict(hidden_nodes=20, epochs=2, learning_rate=0.3)
PLOTS = {"confusion_matrix.png", "learning_curve.png", "misclassified.png", "output_layer.png"}


def run_flow(**overrides):
    kwargs = dict(config=TrainConfig(**CONFIG), source="shipped-small", model_name="t-model", experiment="t-exp")
    kwargs.update(overrides)
    return train_flow(**kwargs)


def runs_of(client: MlflowClient, experiment: str = "t-exp") -> list:
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def test_the_whole_chain_leaves_a_complete_mlflow_run(tracking_env, monkeypatch):
    import numpy
    from prefect.client.orchestration import get_client

    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")  # (MLflow's setting: a sample a second)
    summary = run_flow()

    client = MlflowClient(tracking_env.uri, registry_uri=tracking_env.uri)
    runs = runs_of(client)
    assert [r.info.run_id for r in runs] == [summary["run_id"]]
    run = client.get_run(summary["run_id"])
    run_id = run.info.run_id
    assert run.info.run_name == "h20-lr0.3-e2-s0" == summary["run_name"]
    assert run.info.status == "FINISHED"
    # the description (markdown, links clickable in the MLflow UI) links both ways
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith(f"# h20-lr0.3-e2-s0: performance {summary['performance']:.4f}")
    assert f"({summary['run_url']})" in note
    if "prefect.flow_run_url" in run.data.tags:  # the test harness's server has no UI address
        assert f"({run.data.tags['prefect.flow_run_url']})" in note

    # parameters
    params = run.data.params
    expected_config = NetworkConfig(**CONFIG).to_dict()
    assert {k: params[k] for k in expected_config} == {k: str(v) for k, v in expected_config.items()}
    assert params["source"] == "shipped-small"
    assert params["train_digest"] == KNOWN_DIGESTS["mnist_train_100"]
    assert params["test_digest"] == KNOWN_DIGESTS["mnist_test_10"]
    assert (params["train_records"], params["test_records"]) == ("100", "10")
    assert params["version.numpy"] == numpy.__version__
    commit = git_state()["git_commit"]
    assert params["git_commit"] == commit and len(commit) == 40

    # metrics, per epoch with steps, and the final ones
    for name in ("train_mse", "epoch_performance"):
        assert sorted(m.step for m in client.get_metric_history(run_id, name)) == [1, 2], name
    metrics = run.data.metrics
    assert metrics["performance"] == summary["performance"]
    last_epoch = {m.step: m.value for m in client.get_metric_history(run_id, "epoch_performance")}[2]
    assert metrics["performance"] == last_epoch  # the evaluated network is the last epoch's
    assert 0.0 <= metrics["performance"] <= 1.0
    assert 0.0 <= metrics["system/cpu_utilization_percentage"] <= 100.0  # MLflow's system metrics
    assert metrics["system/system_memory_usage_megabytes"] > 0
    assert metrics["timing/training_seconds"] > 0 and metrics["timing/records_per_s"] > 0
    assert metrics["timing/pipeline_seconds"] > metrics["timing/training_seconds"]
    # in the MLflow UI: the scores ungrouped on top, then a section per prefix
    assert {k.split("/")[0] for k in metrics if "/" in k} == {"accuracy_digit", "timing", "system"}
    assert {k for k in metrics if "/" not in k} == {"train_mse", "epoch_performance", "performance"}

    # artifacts
    root = {a.path for a in client.list_artifacts(run_id)}
    assert {"weights.npz", "config.json", "plots"} <= root
    assert {a.path for a in client.list_artifacts(run_id, "plots")} == {f"plots/{p}" for p in PLOTS}
    # MLflow's own logging calls: pictures of the weights per epoch (log_image with key and step),
    # the confusion matrix as a dict, the output layer's examples as a table
    images = {a.path.split("/")[1] for a in client.list_artifacts(run_id, "images")}
    for key in ("hidden_weights", "output_weights"):
        assert {int(p.split("+")[2]) for p in images if p.startswith(f"{key}+step+") and p.endswith(".png")} == {1, 2}
    assert {"confusion_matrix.json", "output_layer.json"} <= root
    # the model: an MLflow 3 LoggedModel, output of the run at its last epoch, with its metrics
    (output,) = run.outputs.model_outputs
    model = client.get_logged_model(output.model_id)
    assert (output.step, model.source_run_id, str(model.status)) == (2, run_id, "READY")
    assert "MLmodel" in {a.path for a in client.list_logged_model_artifacts(model.model_id)}
    assert {m.key: m.value for m in model.metrics}["performance"] == summary["performance"]

    # dataset inputs
    inputs = run.inputs.dataset_inputs
    by_context = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset for i in inputs}
    assert len(inputs) == 2 and set(by_context) == {"training", "evaluation"}
    assert by_context["training"].name == "mnist_train_100"
    assert by_context["training"].digest == KNOWN_DIGESTS["mnist_train_100"][:32]
    assert by_context["evaluation"].name == "mnist_test_10"
    assert by_context["evaluation"].digest == KNOWN_DIGESTS["mnist_test_10"][:32]

    # tags: the Prefect flow run that made it, and the code version
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == commit
    assert (tags["mlflow.source.name"], tags["mlflow.source.type"]) == ("mynn train", "JOB")  # the UI's Source
    import getpass
    assert tags["mlflow.user"] == getpass.getuser()  # the UI's Created by
    flow_run_id = uuid.UUID(tags["prefect.flow_run_id"])
    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(flow_run_id)
    assert flow_run.name == "h20-lr0.3-e2-s0"
    assert flow_run.state is not None and flow_run.state.is_completed()

    # the registered version and its alias
    champion = client.get_model_version_by_alias("t-model", "champion")
    assert (str(champion.version), champion.run_id) == ("1", run_id)
    assert champion.tags["mynn.model_id"] == model.model_id and champion.source == model.artifact_location
    assert (summary["model_version"], summary["promoted"]) == ("1", True)
    assert tags["mynn.model_version"] == "t-model/1"
    assert tags["mynn.promotion"].startswith("promoted")


def test_the_same_seed_twice_gives_identical_weights_and_performance(tracking_env, tmp_path):
    first = run_flow()
    second = run_flow()

    assert first["run_id"] != second["run_id"]
    client = MlflowClient(tracking_env.uri, registry_uri=tracking_env.uri)
    arrays = []
    for i, summary in enumerate((first, second)):
        local = client.download_artifacts(summary["run_id"], "weights.npz", str(tmp_path / f"dl{i}"))
        with np.load(local, allow_pickle=False) as npz:
            arrays.append({k: npz[k] for k in npz.files})
    assert arrays[0].keys() == arrays[1].keys() == {"wih", "who", "config"}
    for key in ("wih", "who"):
        assert arrays[0][key].dtype == arrays[1][key].dtype == np.float64
        assert arrays[0][key].tobytes() == arrays[1][key].tobytes(), key
    assert str(arrays[0]["config"]) == str(arrays[1]["config"])
    assert first["performance"] == second["performance"]
    perf = [client.get_run(s["run_id"]).data.metrics["performance"] for s in (first, second)]
    assert perf[0] == perf[1]
    # identical predictions are not significantly better (McNemar: b = c = 0): no promotion
    assert (second["model_version"], second["promoted"]) == ("2", False)
    assert "b=0, c=0" in second["reason"]


def test_a_failing_flow_ends_its_run_failed_and_registers_nothing(tracking_env, tmp_path):
    source = tmp_path / "bad-source"
    source.mkdir()
    lines = (paths.data_dir() / "mnist_train_100.csv").read_text().splitlines(keepends=True)
    fields = lines[16].split(",")
    fields[3] = "abc"
    lines[16] = ",".join(fields)
    (source / "mnist_train.csv").write_text("".join(lines))
    shutil.copyfile(paths.data_dir() / "mnist_test_10.csv", source / "mnist_test.csv")

    with pytest.raises(DataFormatError, match="line 17"):
        run_flow(source=str(source))

    client = MlflowClient(tracking_env.uri, registry_uri=tracking_env.uri)
    runs = runs_of(client)
    assert len(runs) == 1
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "DataFormatError" in runs[0].data.tags["mynn.failure"]
    assert "mynn.model_version" not in runs[0].data.tags
    assert client.search_model_versions() == []
    assert client.search_registered_models() == []


@pytest.mark.parametrize("config", [{"hidden_nodes": 0}, {"learning_rate": -1}],
                         ids=["hidden_nodes=0", "learning_rate=-1"])
def test_invalid_parameters_are_refused_before_any_task_runs(tracking_env, config):
    with pytest.raises((ParameterTypeError, ValidationError)) as info:
        run_flow(config=config)

    assert next(iter(config)) in str(info.value)  # names the field

    client = MlflowClient(tracking_env.uri, registry_uri=tracking_env.uri)
    assert client.get_experiment_by_name("t-exp") is None  # the flow body never started
    all_experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(all_experiments) == []
    assert not Path(tracking_env.cache).exists()  # nothing was downloaded
    assert not Path(tracking_env.runs).exists()


def test_a_train_config_out_of_bounds_cannot_even_be_built():
    with pytest.raises(ValidationError, match="learning_rate"):
        TrainConfig(learning_rate=-1)
    with pytest.raises(ValidationError, match="hidden_nodes"):
        TrainConfig(hidden_nodes=0)
