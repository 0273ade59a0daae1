"""Case 8: two registrations of the same model name at the same moment, from two processes
(spawned, released together by a barrier), on one SQLite store created beforehand.

Each process registers a different trained network with ``tracking.registry.register``
(equal in size, so they reach the registry at about the same moment). The versions must be
distinct, every decision recorded, and the alias must end on a version that passed its
evaluation against the champion left by the registrations before it: here, since one network
is far better than the other on the 10,000 test records, on the better one, whichever
registers first.

What this caught, before registrations were made to decide in version order (see
tracking.registry._wait_for_earlier_decisions), in about half of the attempts: both processes
read "no champion yet", both moved the alias and the last one kept it, sometimes the weak one;
or SQLite refused the second alias write (UNIQUE constraint failed: registered_model_aliases),
so one registration crashed, leaving a version without a decision. Three attempts per run."""
from __future__ import annotations

import multiprocessing
import time

import pytest
from mlflow import MlflowClient

from tests.faults.faultkit import SHIPPED
from mynn.config import NetworkConfig
from mynn.arrays import load_npy
from mynn.csvfile import read_csv
from mynn.encoding import scale_inputs
from mynn.network import Network
from mynn.prepare import prepare
from mynn.train import fit
from tracking.registry import log_model
from tracking.runs import end_run, start_run
from tracking.store import ensure_experiment

MODEL = "raced"


def _register_in_child(uri, run_id, model_uri, weights, test_dir, test_digest, barrier, results):
    """In a fresh (spawned) process: wait for the other one, then register."""
    from tracking.registry import register

    try:
        client = MlflowClient(uri, registry_uri=uri)
        test = load_npy(test_dir)
        net = Network.load(weights)
        performance = net.performance(scale_inputs(test.pixels), test.labels)
        barrier.wait(timeout=120)
        reg = register(client, run_id, MODEL, model_uri, performance=performance, test_pixels=test.pixels,
                       test_labels=test.labels, test_digest=test_digest, network=net)
        results.put((run_id, reg.to_dict(), time.time()))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        results.put((run_id, f"{type(exc).__name__}: {exc}", time.time()))
        raise


@pytest.fixture(scope="module")
def two_networks(tmp_path_factory):
    """A strong and a weak network, their MLflow runs with logged models, the full test set."""
    root = tmp_path_factory.mktemp("race")
    db = root / "mlflow.db"
    uri = f"sqlite:///{db}"
    client, exp = ensure_experiment(uri, "race")  # the store exists before anyone races on it
    client.search_registered_models()
    test = prepare(SHIPPED / "mnist_test.csv.gz", "full-test", root / "cache")
    test_ds = load_npy(test.directory)
    train = read_csv(SHIPPED / "mnist_train_100.csv")
    nets = {}
    for label, cfg in (("strong", NetworkConfig(hidden_nodes=100, learning_rate=0.2, epochs=5)),
                       ("weak", NetworkConfig(hidden_nodes=100, learning_rate=0.001, epochs=1, seed=1))):
        net, _ = fit(cfg, train.pixels, train.labels)
        weights = net.save(root / label / "weights.npz")
        run_id = start_run(client, exp, cfg, run_name=label)
        model_uri = log_model(client, run_id, weights, test_ds.pixels[:2])
        end_run(client, run_id, "FINISHED")
        nets[label] = dict(run_id=run_id, model_uri=model_uri, weights=str(weights),
                           performance=net.performance(scale_inputs(test_ds.pixels), test_ds.labels))
    assert nets["strong"]["performance"] > nets["weak"]["performance"] + 0.2, nets  # far apart
    return dict(uri=uri, test_dir=str(test.directory), test_digest=test.digest, **nets)


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_two_registrations_at_once_get_distinct_versions_and_the_alias_ends_on_merit(two_networks, attempt):
    name = MODEL
    env = two_networks
    client = MlflowClient(env["uri"], registry_uri=env["uri"])
    try:  # each attempt starts without the model
        client.delete_registered_model(name)
    except Exception:  # noqa: BLE001 - not there yet
        pass
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    order = ("strong", "weak") if attempt % 2 else ("weak", "strong")  # (which one starts first)
    procs = [ctx.Process(target=_register_in_child, args=(env["uri"], env[label]["run_id"], env[label]["model_uri"],
                                                          env[label]["weights"], env["test_dir"], env["test_digest"],
                                                          barrier, results)) for label in order]
    for p in procs:
        p.start()
    got = {}
    for _ in procs:
        run_id, reg, _ = results.get(timeout=180)
        got[run_id] = reg
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(isinstance(r, dict) for r in got.values()), got
    strong, weak = got[env["strong"]["run_id"]], got[env["weak"]["run_id"]]

    assert {strong["version"], weak["version"]} == {"1", "2"}  # distinct versions
    versions = {str(mv.version): mv for mv in client.search_model_versions(f"name = '{name}'")}
    assert set(versions) == {"1", "2"}
    for reg in (strong, weak):  # each decision recorded on its version and its run
        tags = versions[reg["version"]].tags
        assert tags["mynn.promotion"].startswith("promoted" if reg["promoted"] else "not promoted")
        run_tags = client.get_run(versions[reg["version"]].run_id).data.tags
        assert run_tags["mynn.promotion"] == tags["mynn.promotion"]
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.tags["mynn.promotion"].startswith("promoted")  # the alias is on a promoted version ...
    assert str(champion.version) == strong["version"]  # ... the better one, whoever registered first
    assert strong["promoted"]
    if weak["version"] == "2":  # the weak one came second: it was compared with the strong one
        assert not weak["promoted"] and weak["champion_version"] == strong["version"]
    else:  # the weak one came first: promoted (no champion yet), then beaten by the strong one
        assert weak["promoted"] and strong["champion_version"] == weak["version"]
