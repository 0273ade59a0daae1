"""tracking.registry: a version is registered and the alias moves only on merit (mynn.promotion),
every decision recorded on the run and the version; against a real SQLite store under tmp_path,
networks trained through the one train-and-log path on the book's 100/10 subsets."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.artifacts import download_artifacts

from flows.training import train_and_log
from mynn import stats
from mynn.config import NetworkConfig
from mynn.arrays import load_npy
from mynn.encoding import scale_inputs
from mynn.fetch import fetch
from mynn.network import Network
from mynn.prepare import PreparedData, prepare_fetched
from tracking import evaluation, registry, store
from tracking.runs import log_data, open_run

GOOD = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=2)
WORSE = NetworkConfig(hidden_nodes=2, learning_rate=0.01, epochs=1)


@pytest.fixture
def prepared(tracking_env) -> PreparedData:
    return prepare_fetched(fetch("shipped-small", tracking_env.cache), tracking_env.cache)


def artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, path)}


def train_and_evaluate(env, config: NetworkConfig, data: PreparedData):
    run_id, _, _ = open_run(env.uri, "registry", config, runs_dir=env.runs)
    log_data(env.uri, run_id, data)
    trained = train_and_log(data, config, env.uri, run_id)
    ev = evaluation.evaluate_run(env.uri, run_id, trained.weights_path, trained.history, data, trained.model_uri)
    return store.client(env.uri), run_id, trained, ev


def test_register_moves_the_alias_only_on_merit_and_the_model_loads(tracking_env, prepared, monkeypatch):
    import mlflow.data
    import mlflow.pyfunc

    name = "tasks-model"
    client, good_id, good, good_ev = train_and_evaluate(tracking_env, GOOD, prepared)

    first = registry.register_run(tracking_env.uri, good_id, good.weights_path, prepared, good_ev.performance, model_name=name,
                                  model_uri=good.model_uri)

    assert (first.version, first.promoted, first.champion_version) == ("1", True, None)
    assert (first.rule, first.alpha, first.p_value, first.b, first.c) == ("mcnemar", 0.05, None, None, None)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert client.get_model_version(name, "1").run_id == good_id
    run = client.get_run(good_id)
    tags = run.data.tags
    assert tags["mynn.model_version"] == f"{name}/1"
    assert tags["mynn.promotion"] == "promoted: no 'champion' yet"
    assert "mynn.promotion_p_value" not in tags and "mynn.champion_performance" not in tags  # no champion
    assert "promotion_p_value" not in run.data.metrics  # nothing to compare with
    v1 = client.get_model_version(name, "1").tags
    assert v1["mynn.promotion"] == "promoted: no 'champion' yet"
    assert (v1["rule"], v1["alpha"]) == ("mcnemar", "0.05")
    assert not {"p_value", "champion_version", "champion_performance"} & set(v1)  # nothing to compare with
    assert "none" not in v1.values()
    version = client.get_model_version(name, "1")
    assert f"performance **{good_ev.performance:.4f}**" in version.description
    assert "Promoted: no 'champion' yet" in version.description and "its MLflow run" in version.description
    # an MLflow 3 LoggedModel of the run, which the version points at
    model = client.get_logged_model(version.tags["mynn.model_id"])
    assert (model.source_run_id, str(model.status), version.source) == (good_id, "READY", model.artifact_location)
    assert good.model_uri == f"models:/{model.model_id}"  # the one the train-and-log path logged
    assert [(o.model_id, o.step) for o in client.get_run(good_id).outputs.model_outputs] == [(model.model_id, GOOD.epochs)]
    # the evaluation's metrics are the model's too, measured on the run's test dataset input
    test_input = [d.dataset for d in client.get_run(good_id).inputs.dataset_inputs
                  if {t.value for t in d.tags} == {"evaluation"}][0]
    on_model = {m.key: m for m in model.metrics}
    assert on_model["performance"].value == good_ev.performance
    assert len(on_model) == 1 + sum(np.isfinite(a) for a in good_ev.per_class)  # and each digit's accuracy
    assert {(m.dataset_name, m.dataset_digest) for m in on_model.values()} == {(test_input.name, test_input.digest)}
    assert mlflow.data.get_source(test_input).__class__.__name__ == "LocalArtifactDatasetSource"  # resolvable
    assert json.loads(model.tags["mlflow.modelVersions"]) == [{"name": name, "version": "1"}]  # the Models tab's link
    assert model.params["hidden_nodes"] == str(GOOD.hidden_nodes)
    local = Path(download_artifacts(artifact_uri=model.artifact_location, dst_path=str(tracking_env.db.parent / "m"),
                                    tracking_uri=tracking_env.uri))
    assert f"model_id: {model.model_id}" in (local / "MLmodel").read_text()
    # the model's requirements are what inference imports, not what training needs
    reqs = local / "requirements.txt"
    assert sorted(line.split("==")[0] for line in reqs.read_text().split()) == ["mlflow", "numpy", "pandas", "scipy"]

    # a worse model: registered as version 2, the alias stays on version 1
    _, worse_id, worse, worse_ev = train_and_evaluate(tracking_env, WORSE, prepared)
    assert worse_ev.performance < good_ev.performance, "precondition: WORSE must score lower than GOOD"
    second = registry.register_run(tracking_env.uri, worse_id, worse.weights_path, prepared, worse_ev.performance, model_name=name)

    assert (second.version, second.promoted, second.champion_version) == ("2", False, "1")
    assert second.champion_performance == good_ev.performance  # the champion, re-measured
    assert second.b < second.c and second.p_value > 0.5  # evidence, if any, is for the champion
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    worse_run = client.get_run(worse_id)
    assert worse_run.data.tags["mynn.promotion"].startswith("not promoted: right on ")
    assert float(worse_run.data.tags["mynn.promotion_p_value"]) == second.p_value
    assert worse_run.data.metrics["promotion_p_value"] == second.p_value
    assert float(worse_run.data.tags["mynn.champion_performance"]) == good_ev.performance
    v2 = client.get_model_version(name, "2").tags
    assert v2["mynn.promotion"].startswith("not promoted")
    assert (v2["champion_version"], float(v2["champion_performance"]), float(v2["p_value"])) == (
        "1", good_ev.performance, second.p_value)

    # an identical one (same config and seed: same weights, every record the same): no evidence
    # that it is better, so under the McNemar rule the alias stays
    _, equal_id, equal, equal_ev = train_and_evaluate(tracking_env, GOOD, prepared)
    assert equal_ev.performance == good_ev.performance
    third = registry.register_run(tracking_env.uri, equal_id, equal.weights_path, prepared, equal_ev.performance, model_name=name)

    assert (third.version, third.promoted, third.champion_version) == ("3", False, "1")
    assert (third.b, third.c, third.p_value) == (0, 0, 1.0)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    equal_run = client.get_run(equal_id)
    assert equal_run.data.tags["mynn.promotion"].startswith("not promoted")
    assert equal_run.data.tags["mynn.promotion_p_value"] == "1.0"
    assert equal_run.data.metrics["promotion_p_value"] == 1.0
    assert client.get_model_version(name, "3").tags["p_value"] == "1.0"

    # the same under the old rule "at-least": an equal score takes the alias
    _, again_id, again, again_ev = train_and_evaluate(tracking_env, GOOD, prepared)
    fourth = registry.register_run(tracking_env.uri, again_id, again.weights_path, prepared, again_ev.performance, model_name=name,
                               promotion="at-least")

    assert (fourth.version, fourth.promoted, fourth.champion_version, fourth.rule) == ("4", True, "1", "at-least")
    assert (fourth.b, fourth.c, fourth.p_value) == (0, 0, 1.0)  # recorded, though the rule ignores it
    champ = client.get_model_version_by_alias(name, "champion")
    assert (str(champ.version), champ.run_id) == ("4", again_id)
    assert client.get_run(again_id).data.tags["mynn.promotion"].startswith("promoted: performance")
    v4 = client.get_model_version(name, "4").tags
    assert (v4["rule"], v4["champion_version"]) == ("at-least", "1")

    # the registered model, loaded by alias through MLflow, predicts what the network predicts
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_model prepends the model's code/ folder
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")  # MLFLOW_TRACKING_URI: the tmp store
    test = load_npy(prepared.test.directory)
    train = load_npy(prepared.train.directory)
    rows = np.concatenate([test.pixels, train.pixels[:20]]).astype(np.float64)  # raw 0..255
    out = model.predict(rows)
    net = Network.load(again.weights_path)
    expected = net.predict(scale_inputs(rows.astype(np.uint8)))
    np.testing.assert_array_equal(out["digit"].to_numpy(), expected)
    np.testing.assert_allclose(out[[f"output_{i}" for i in range(10)]].to_numpy(),
                               net.query(scale_inputs(rows.astype(np.uint8))), rtol=0, atol=1e-12)


def test_register_promotes_a_significantly_better_model(tracking_env, prepared):
    """A much better model, compared on enough records (the 100 training records used as the
    test set through the data argument), is promoted with a small McNemar p-value."""
    name = "better-model"
    weak = NetworkConfig(hidden_nodes=2, learning_rate=0.01, epochs=1)
    strong = NetworkConfig(hidden_nodes=50, learning_rate=0.3, epochs=3)
    scored_on = dataclasses.replace(prepared, test=prepared.train)
    client, weak_id, weak_trained, weak_ev = train_and_evaluate(tracking_env, weak, scored_on)
    assert weak_ev.records == 100
    first = registry.register_run(tracking_env.uri, weak_id, weak_trained.weights_path, scored_on, weak_ev.performance,
                              model_name=name)
    assert first.promoted and first.version == "1"

    _, strong_id, strong_trained, strong_ev = train_and_evaluate(tracking_env, strong, scored_on)
    second = registry.register_run(tracking_env.uri, strong_id, strong_trained.weights_path, scored_on, strong_ev.performance,
                               model_name=name, alpha=0.01)

    # the decision, recomputed by hand from the two networks' predictions on the 100 records
    records = load_npy(prepared.train.directory)
    right = [Network.load(t.weights_path).predict(scale_inputs(records.pixels)) == records.labels
             for t in (strong_trained, weak_trained)]
    b, c = int(np.sum(right[0] & ~right[1])), int(np.sum(right[1] & ~right[0]))
    assert (second.b, second.c) == (b, c) and b > c
    p = stats.mcnemar(right[0], right[1]).p_value
    assert second.p_value == p < 0.01 == second.alpha
    assert (second.version, second.promoted, second.champion_version, second.rule) == ("2", True, "1", "mcnemar")
    assert second.performance == strong_ev.performance > second.champion_performance == weak_ev.performance
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    v2 = client.get_model_version(name, "2").tags
    assert v2["mynn.promotion"].startswith("promoted: right on ") and "< alpha 0.01" in v2["mynn.promotion"]
    assert (v2["rule"], v2["alpha"], float(v2["p_value"]), v2["champion_version"]) == ("mcnemar", "0.01", p, "1")
    assert float(v2["performance"]) == pytest.approx(strong_ev.performance, abs=1e-6)
    assert float(v2["champion_performance"]) == weak_ev.performance
    assert (v2["mcnemar_b"], v2["mcnemar_c"]) == (str(b), str(c))
    assert v2["test_digest"] == prepared.train.digest
    run = client.get_run(strong_id)
    assert run.data.tags["mynn.promotion"] == v2["mynn.promotion"]
    assert float(run.data.tags["mynn.promotion_p_value"]) == p == run.data.metrics["promotion_p_value"]
    assert float(run.data.tags["mynn.champion_performance"]) == weak_ev.performance


def test_register_refuses_a_performance_that_is_not_the_models(tracking_env, prepared):
    client, run_id, trained, ev = train_and_evaluate(tracking_env, GOOD, prepared)
    with pytest.raises(ValueError, match="scores"):
        registry.register_run(tracking_env.uri, run_id, trained.weights_path, prepared, ev.performance + 0.1, model_name="m")
    with pytest.raises(ValueError, match="alpha"):
        registry.register_run(tracking_env.uri, run_id, trained.weights_path, prepared, ev.performance, model_name="m", alpha=1.5)
    with pytest.raises(ValueError, match="promotion"):
        registry.register_run(tracking_env.uri, run_id, trained.weights_path, prepared, ev.performance, model_name="m",
                          promotion="better")
    assert client.search_registered_models() == []  # refused before anything was registered
